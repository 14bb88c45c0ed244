"""Saved histories replay on the current ConversationWorkflow: catches non-determinism before deploy."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.conversation import ConversationWorkflow
from workflows.delivery import DeliveryWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_saved_history_replays(path: Path):
    history = WorkflowHistory.from_json("conversation-replay", path.read_text())
    replayer = Replayer(workflows=[ConversationWorkflow, DeliveryWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


def test_there_is_a_saved_history():
    assert HISTORIES, "record one with python -m tests.workflows.record_histories"
