"""The admin commands that connect a bot and create accounts until the settings pages exist."""

import argparse
import asyncio
import os
import shlex
import subprocess
import sys

import pytest
from sqlalchemy import select

from domain.enums import ChannelKind, OperatorRole
from domain.ids import poller_workflow_id
from infra.models import ApiToken, Inbox, Operator
from infra.security import CredentialBox, verify_password
from infra.settings import ROOT
from services.api_tokens import authenticate
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


def _readme_admin_commands() -> list[list[str]]:
    """The admin commands exactly as README.md shows them (the interpreter aside)."""
    commands = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(".venv/bin/python -m setup.admin "):
            words = shlex.split(line, comments=True)
            commands.append([sys.executable, *words[1:]])
    return commands


async def test_the_readme_admin_commands_run_as_written(clean_db, app_settings, temporal_client, fake_telegram, world):
    commands = _readme_admin_commands()
    assert [c[3] for c in commands] == ["add-inbox", "add-operator", "add-api-token"]
    env = {
        **os.environ,
        "DATABASE_URL": app_settings.database_url,
        "TEMPORAL_ADDRESS": app_settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": "admin-cli-readme",
        "CREDENTIALS_KEY": app_settings.credentials_key.get_secret_value(),
        "TELEGRAM_API_BASE": fake_telegram.base_url,
        "PUBLIC_URL": "http://localhost:8000",
    }
    # the token and the password are asked for; without a terminal (a new session has none)
    # getpass reads them from stdin; the API token is printed, alone on stdout
    answers = [TOKEN, "correct horse battery", ""]
    outputs = []
    for command, answer in zip(commands, answers, strict=True):
        done = await asyncio.to_thread(
            subprocess.run,
            command,
            cwd=ROOT,
            env=env,
            input=answer + "\n",
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert TOKEN not in done.stdout + done.stderr
        outputs.append(done.stdout)
    api_token = outputs[2].strip()
    async with clean_db() as db:
        inbox = await db.scalar(select(Inbox).where(Inbox.name == "Support bot"))
        operator = await db.scalar(select(Operator).where(Operator.email == "ann@example.com"))
        token = await authenticate(db, api_token)
    assert token is not None and token.name == "CRM" and token.can_write and token.branch_ids is None
    assert inbox.channel == ChannelKind.TELEGRAM and inbox.webhook_url is None
    assert verify_password(operator.password_hash, "correct horse battery")
    await temporal_client.get_workflow_handle(poller_workflow_id(inbox.id)).terminate()


async def test_an_api_token_is_created_scoped_and_revoked_from_the_command_line(clean_db, app_settings, world):
    await admin.add_api_token(app_settings, argparse.Namespace(name="Reports", branch=[world.branch_id], write=False))
    async with clean_db() as db:
        token = await db.scalar(select(ApiToken).where(ApiToken.name == "Reports"))
    assert token.branch_ids == [world.branch_id] and not token.can_write
    await admin.revoke_api_token(app_settings, argparse.Namespace(token_id=token.id))
    async with clean_db() as db:
        assert (await db.get(ApiToken, token.id)).revoked_at is not None
    with pytest.raises(SystemExit, match="No such branch"):
        await admin.add_api_token(app_settings, argparse.Namespace(name="Bad", branch=[10**12], write=False))
    with pytest.raises(SystemExit, match="there is no api token"):
        await admin.revoke_api_token(app_settings, argparse.Namespace(token_id=10**12))
