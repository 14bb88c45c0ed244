"""Saved histories of every workflow replay on the current code: catches non-determinism before deploy."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.bitrix24 import Bitrix24TaskWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.files import FetchAttachmentsWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.polling import PollerWorkflow
from workflows.presence import PresenceSweepWorkflow
from workflows.staff_notifications import StaffNotifierWorkflow
from workflows.webhook_check import WebhookCheckWorkflow
from workflows.webhooks import WebhookEndpointWorkflow

WORKFLOWS = [
    ConversationWorkflow,
    DeliveryWorkflow,
    PollerWorkflow,
    FetchAttachmentsWorkflow,
    WebhookCheckWorkflow,
    HousekeepingWorkflow,
    WebhookEndpointWorkflow,
    Bitrix24TaskWorkflow,
    StaffNotifierWorkflow,
    PresenceSweepWorkflow,
]
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path):
    history = WorkflowHistory.from_json("replay", path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_every_workflow_has_a_saved_history():
    recorded = {
        WorkflowHistory.from_json("replay", p.read_text())
        .events[0]
        .workflow_execution_started_event_attributes.workflow_type.name
        for p in HISTORIES
    }
    assert recorded == {w.__name__ for w in WORKFLOWS}, "record one with python -m tests.workflows.record_histories"
