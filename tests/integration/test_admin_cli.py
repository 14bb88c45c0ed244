"""The admin commands that connect a bot and create accounts until the settings pages exist."""

import argparse

from sqlalchemy import select

from domain.enums import ChannelKind, OperatorRole
from domain.ids import poller_workflow_id
from infra.models import Inbox, Operator
from infra.security import CredentialBox, verify_password
from setup import admin
from tests.fakes.telegram import TOKEN


async def test_add_inbox_without_public_https_url_starts_polling(
    clean_db, app_settings, temporal_client, fake_telegram, world
):
    settings = app_settings.model_copy(
        update={"public_url": "http://localhost:8000", "temporal_task_queue": "admin-cli-test"}
    )
    await admin.add_inbox(settings, argparse.Namespace(channel="telegram", name="Support bot", token=TOKEN))
    async with clean_db() as db:
        inbox = await db.scalar(select(Inbox).where(Inbox.name == "Support bot"))
    assert inbox.channel == ChannelKind.TELEGRAM and inbox.webhook_url is None
    credentials = CredentialBox(app_settings.credentials_key.get_secret_value()).open(inbox.credentials_encrypted)
    assert credentials["token"] == TOKEN and len(credentials["webhook_secret"]) >= 16
    assert TOKEN.encode() not in inbox.credentials_encrypted  # sealed at rest
    description = await temporal_client.get_workflow_handle(poller_workflow_id(inbox.id)).describe()
    assert description.workflow_type == "PollerWorkflow"
    await temporal_client.get_workflow_handle(poller_workflow_id(inbox.id)).terminate()


async def test_add_operator_hashes_the_password(clean_db, app_settings, world):
    await admin.add_operator(
        app_settings,
        argparse.Namespace(
            email="ann@example.com", name="Ann", role="supervisor", branch=None, password="correct horse"
        ),
    )
    async with clean_db() as db:
        operator = await db.scalar(select(Operator).where(Operator.email == "ann@example.com"))
    assert operator.role == OperatorRole.SUPERVISOR and operator.branch_id == world.branch_id
    assert verify_password(operator.password_hash, "correct horse") and "correct" not in operator.password_hash
