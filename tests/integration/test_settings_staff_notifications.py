"""Settings -> Staff notifications over real HTTP: an admin adds a rule for a branch (a staff chat,
one of our Telegram bots, a mode), its notifier workflow starts, and deletes it; a chat id that
is not one, or a bot that is not an active Telegram inbox, is refused and keeps nothing."""

from __future__ import annotations

from contextlib import suppress

import httpx
from sqlalchemy import func, select, update
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from domain.enums import ChannelKind, OperatorRole
from domain.ids import staff_notifier_workflow_id
from infra.models import AuditEvent, Branch, Inbox, Operator, StaffNotificationRule
from tests.integration.realtime_support import staff as staff_in_russian

CSRF = "c"  # realtime_support.staff's sessions
HTML = {"accept": "text/html"}


async def staff(factory, role: OperatorRole) -> tuple[int, str]:
    """A signed-in member of staff who reads the cabinet in English."""
    operator_id, cookie = await staff_in_russian(factory, role)
    async with factory() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == operator_id).values(locale="en"))
    return operator_id, cookie


async def _rules(factory) -> list[StaffNotificationRule]:
    async with factory() as db:
        return list((await db.scalars(select(StaffNotificationRule))).all())


async def test_an_admin_adds_a_rule_whose_notifier_starts_and_deletes_it(clean_db, live_api, temporal_client):
    async with clean_db() as db, db.begin():
        branch = Branch(name="North")
        bot = Inbox(name="Staff bot", channel=ChannelKind.TELEGRAM, credentials_encrypted=b"")
        widget = Inbox(name="Site", channel=ChannelKind.WIDGET, credentials_encrypted=b"")
        db.add_all([branch, bot, widget])
        await db.flush()
    operator_id, cookie = await staff(clean_db, OperatorRole.ADMIN)
    form = {"csrf_token": CSRF, "branch_id": str(branch.id), "mode": "first", "bot_inbox_id": str(bot.id)}
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}, headers=HTML) as http:
        page = await http.get("/settings/staff-notifications")
        assert page.status_code == 200 and "Staff bot" in page.text and "Site" not in page.text

        not_a_chat = await http.post("/settings/staff-notifications", data={**form, "chat_id": "@staff"})
        assert not_a_chat.status_code == 422 and "This is not in the expected form." in not_a_chat.text
        not_a_bot = await http.post(
            "/settings/staff-notifications", data={**form, "chat_id": "-1001", "bot_inbox_id": str(widget.id)}
        )
        assert not_a_bot.status_code == 422 and "Choose an active Telegram bot" in not_a_bot.text
        assert await _rules(clean_db) == []

        added = await http.post(
            "/settings/staff-notifications", data={**form, "chat_id": "-1001", "operator_id": str(operator_id)}
        )
        assert added.status_code == 303
        [rule] = await _rules(clean_db)
        assert (rule.branch_id, rule.mode, rule.chat_id, rule.operator_id) == (branch.id, "first", "-1001", operator_id)
        handle = temporal_client.get_workflow_handle(staff_notifier_workflow_id(rule.id))
        try:
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            listed = await http.get("/settings/staff-notifications")
            assert "The first message of a conversation" in listed.text and "-1001" in listed.text

            deleted = await http.post(f"/settings/staff-notifications/{rule.id}/delete", data={"csrf_token": CSRF})
            assert deleted.status_code == 303 and await _rules(clean_db) == []
        finally:
            with suppress(RPCError):
                await handle.terminate()
    async with clean_db() as db:
        actions = list((await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all())
        assert await db.scalar(select(func.count()).select_from(StaffNotificationRule)) == 0
    assert actions == ["staff_notifications.rule_added", "staff_notifications.rule_deleted"]


async def test_only_admins_manage_staff_notifications(clean_db, live_api):
    _, supervisor = await staff(clean_db, OperatorRole.SUPERVISOR)
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": supervisor}, headers=HTML) as http:
        assert (await http.get("/settings/staff-notifications")).status_code == 403
        assert (await http.post("/settings/staff-notifications", data={"csrf_token": CSRF})).status_code == 403
