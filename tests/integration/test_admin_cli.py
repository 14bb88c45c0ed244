"""The admin commands that connect a bot and create accounts until the settings pages exist."""

import argparse
import shlex
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select

from domain.enums import ChannelKind, OperatorRole
from domain.ids import poller_workflow_id
from infra.models import ApiToken, Inbox, Operator
from infra.security import CredentialBox, verify_password
from infra.settings import ROOT
from setup import admin
from setup.devstack import free_port
from tests.fakes.telegram import TOKEN, FakeTelegram
from tests.integration.launcher_support import Launch, sign_in


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


@pytest.mark.slow
def test_the_readme_admin_commands_run_as_written_beside_make_run(tmp_path):
    """Exactly the README's steps: `make run` in one terminal, the admin commands in another, the
    same environment in both (no CREDENTIALS_KEY, DATABASE_URL or TEMPORAL_ADDRESS; only where
    the Telegram Bot API is, here a fake one). The bot it connects is polled by make run's worker
    through that fake, which needs the token sealed with make run's key."""
    commands = _readme_admin_commands()
    assert [c[3] for c in commands] == ["add-inbox", "add-operator", "add-api-token"]
    ports = {"API_PORT": free_port(), "TEMPORAL_PORT": free_port(), "TEMPORAL_UI_PORT": free_port()}
    base = f"http://127.0.0.1:{ports['API_PORT']}"
    with FakeTelegram() as telegram:
        stack = Launch(tmp_path / "data", ports, TELEGRAM_API_BASE=telegram.base_url)
        try:
            stack.wait_for(r"ready in ([\d.]+) s", 120)
            # the token and the password are asked for; without a terminal (a new session has
            # none)
            # getpass reads them from stdin; the API token is printed, alone on stdout
            answers = [TOKEN, "correct horse battery", ""]
            printed = []
            for command, answer in zip(commands, answers, strict=True):
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=stack.env,
                    input=answer + "\n",
                    capture_output=True,
                    text=True,
                    timeout=120,
                    start_new_session=True,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                assert TOKEN not in done.stdout + done.stderr
                printed.append(done.stdout)
            assert "(telegram) connected by polling" in printed[0] and "<ann@example.com>" in printed[1]
            api_token = printed[2].strip()
            assert api_token.startswith("sb_")
            answered = httpx.get(f"{base}/api/v1/token", headers={"authorization": f"Bearer {api_token}"})
            assert answered.status_code == 200 and answered.json()["name"] == "CRM", answered.text

            telegram.inject_message(424242, "Is the README right?", first_name="Reader")
            with httpx.Client(base_url=base, headers={"accept": "text/html"}) as http:
                assert sign_in(http, "first-password") == 303
                deadline = time.monotonic() + 60
                while "Reader" not in http.get("/?tab=all").text:  # the conversation in the inbox
                    assert time.monotonic() < deadline, f"the message never arrived:\n{stack.output()}"
                    time.sleep(0.2)
            assert telegram.requests("getUpdates") and not telegram.pending_updates()
        finally:
            assert stack.interrupt() == 0


async def test_an_api_token_is_created_scoped_and_revoked_from_the_command_line(clean_db, app_settings, world):
    await admin.add_api_token(app_settings, argparse.Namespace(name="Reports", branch=[world.branch_id], write=False))
    async with clean_db() as db:
        token = await db.scalar(select(ApiToken).where(ApiToken.name == "Reports"))
    assert token.branch_ids == [world.branch_id] and not token.can_write
    await admin.revoke_api_token(app_settings, argparse.Namespace(token_id=token.id))
    async with clean_db() as db:
        assert (await db.get(ApiToken, token.id)).revoked_at is not None
    with pytest.raises(SystemExit, match=r"No such branch: 1000000000000\.$"):
        await admin.add_api_token(app_settings, argparse.Namespace(name="Bad", branch=[10**12], write=False))
    with pytest.raises(SystemExit, match="there is no api token"):
        await admin.revoke_api_token(app_settings, argparse.Namespace(token_id=10**12))
