"""Snooze and reopen over real HTTP, from the thread and through the REST API: the presets in the
operator's timezone, a chosen time, until the customer writes; the row leaving Mine for the
"Snoozed" filter; an answer or resolve waking it; reopen making it the operator's; refusals said
in place; and the new routes refused outside one's rights (404) and without the form token (403)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from activities.conversation import ConversationActivities
from domain.conversation import WakeRequest
from domain.enums import ConversationStatus
from infra.models import AuditEvent, Conversation, Message, Operator, OutboxEvent
from tests.integration.api_support import assert_problem, client, issue_token
from tests.integration.workspace_support import make_team

HX = {"HX-Request": "true"}
YEKATERINBURG = ZoneInfo("Asia/Yekaterinburg")


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


def _toast(response) -> dict:
    return json.loads(response.headers["HX-Trigger"])["toast"]


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="row-(\d+)"', html)]


async def _notices(clean_db, cid: int) -> list[dict]:
    async with clean_db() as db:
        return list(
            (
                await db.scalars(
                    select(OutboxEvent.payload).where(OutboxEvent.conversation_id == cid).order_by(OutboxEvent.id)
                )
            ).all()
        )


async def _get(clean_db, cid: int) -> Conversation:
    async with clean_db() as db:
        return await db.get(Conversation, cid)


async def test_snoozing_from_the_thread_moves_the_row_from_mine_to_snoozed(team, clean_db):
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == team.ann).values(timezone="Asia/Yekaterinburg"))
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    assert 'id="snooze-menu"' in page.text and 'aria-keyshortcuts="S"' in page.text
    before = datetime.now(UTC)
    snoozed = await ann.post(f"/conversations/{mine}/snooze", {"preset": "tomorrow"}, headers=HX)
    assert snoozed.status_code == 204 and _toast(snoozed)["level"] == "success"
    conversation = await _get(clean_db, mine)
    local = conversation.snoozed_until.astimezone(YEKATERINBURG)
    assert (local.hour, local.minute) == (9, 0)
    assert local.date() == before.astimezone(YEKATERINBURG).date() + timedelta(days=1)
    assert conversation.assignee_id == team.ann and conversation.status == ConversationStatus.OPEN
    listed = await ann.get("/")
    assert mine not in _rows(listed.text) and 'data-count="mine">0<' in listed.text.replace("\n", "")
    assert (await ann.get(f"/conversations/{mine}/row", headers=HX)).status_code == 204  # live: the row leaves
    shown = await ann.get("/?status=snoozed")
    assert _rows(shown.text) == [mine] and 'data-status="snoozed"' in shown.text
    notices = [n for n in await _notices(clean_db, mine) if n.get("kind") == "snooze"]
    assert len(notices) == 1 and notices[0]["operator_id"] == team.ann
    assert datetime.fromisoformat(notices[0]["until"]) == conversation.snoozed_until
    async with clean_db() as db:
        audit = (
            await db.execute(
                select(AuditEvent.actor_operator_id, AuditEvent.details).where(
                    AuditEvent.conversation_id == mine, AuditEvent.action == "conversation.snoozed"
                )
            )
        ).all()
    assert audit == [(team.ann, {"until": conversation.snoozed_until.isoformat()})]
    # the thread says until when
    assert "Отложен до" in (await ann.get(f"/conversations/{mine}")).text


async def test_snooze_until_a_chosen_time_or_the_customers_message_and_refusals(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    later = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0, tzinfo=None)
    chosen = await ann.post(f"/conversations/{mine}/snooze", {"until": later.isoformat(timespec="minutes")}, headers=HX)
    assert chosen.status_code == 204
    # the team's default branch is in UTC, and so is Ann
    assert (await _get(clean_db, mine)).snoozed_until == later.replace(tzinfo=UTC)
    for form, words in [
        ({"until": "2001-01-01T10:00"}, "Выберите время в будущем"),
        ({"until": (datetime.now(UTC) + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M")}, "не больше чем на год"),
        ({"until": "tomorrow-ish"}, "Выберите, до какого времени"),
        ({}, "Выберите, до какого времени"),
        ({"preset": "someday"}, "Выберите, до какого времени"),
    ]:
        refused = await ann.post(f"/conversations/{mine}/snooze", form, headers=HX)
        assert refused.status_code == 422 and words in _toast(refused)["text"], (form, refused.text)
    assert (await _get(clean_db, mine)).snoozed_until == later.replace(tzinfo=UTC)
    # until the customer writes: twice is once
    for _ in range(2):
        assert (await ann.post(f"/conversations/{mine}/snooze", {"preset": "message"}, headers=HX)).status_code == 204
    conversation = await _get(clean_db, mine)
    assert conversation.snoozed_at is not None and conversation.snoozed_until is None
    kinds = [n.get("kind") for n in await _notices(clean_db, mine)]
    assert kinds.count("snooze") == 2  # the chosen time, then until the message once
    await team.customer_writes("Ирина Смирнова", "Есть новости?", assignee=team.ann)
    assert (await _get(clean_db, mine)).snoozed_at is None
    assert mine in _rows((await ann.get("/")).text)
    assert [n.get("kind") for n in await _notices(clean_db, mine)][-1] == "wake"


async def test_a_reply_or_a_resolve_ends_the_snooze(team, clean_db):
    first = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    second = await team.customer_writes("Пётр Кузнецов", assignee=team.ann)
    ann = await team.client("ann")
    for cid in (first, second):
        assert (await ann.post(f"/conversations/{cid}/snooze", {"preset": "hour"}, headers=HX)).status_code == 204
    page = await ann.get(f"/conversations/{first}")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    sent = await ann.post(f"/conversations/{first}/messages", {"text": "Уже едет", "idempotency_key": key}, headers=HX)
    assert sent.status_code == 200
    assert (await ann.post(f"/conversations/{second}/resolve", headers=HX)).status_code == 204
    async with clean_db() as db:
        woken = (
            await db.execute(
                select(AuditEvent.conversation_id, AuditEvent.details)
                .where(AuditEvent.action == "conversation.woken")
                .order_by(AuditEvent.id)
            )
        ).all()
    assert woken == [(first, {"reason": "reply"}), (second, {"reason": "resolve"})]
    assert (await _get(clean_db, first)).snoozed_at is None and (await _get(clean_db, second)).snoozed_at is None
    assert [n.get("kind") for n in await _notices(clean_db, second)][-2:] == ["wake", "resolve"]


async def test_the_workflows_wake_up_is_for_its_own_snooze_only(team, clean_db, app_settings):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    assert (await ann.post(f"/conversations/{mine}/snooze", {"preset": "hour"}, headers=HX)).status_code == 204
    first_until = (await _get(clean_db, mine)).snoozed_until
    assert (await ann.post(f"/conversations/{mine}/snooze", {"preset": "next_week"}, headers=HX)).status_code == 204
    activities = ConversationActivities(clean_db, app_settings)
    # the first snooze's timer: replaced since, nothing happens
    assert await activities.wake_conversation(WakeRequest(conversation_id=mine, until=first_until)) is False
    current = (await _get(clean_db, mine)).snoozed_until
    assert current != first_until
    assert await activities.wake_conversation(WakeRequest(conversation_id=mine, until=current)) is True
    assert (await _get(clean_db, mine)).snoozed_at is None
    assert mine in _rows((await ann.get("/")).text)
    async with clean_db() as db:
        details = await db.scalar(select(AuditEvent.details).where(AuditEvent.action == "conversation.woken"))
    assert details == {"reason": "time"}


async def test_reopen_from_the_thread_makes_it_the_operators_and_tells_the_workflow(team, clean_db):
    resolved = await team.customer_writes("Ирина Смирнова", assignee=team.bob)
    async with clean_db() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == resolved)
            .values(status=ConversationStatus.RESOLVED, assignee_id=None, resolved_at=datetime.now(UTC))
        )
    ann = await team.client("ann")  # the branch's unassigned resolved conversation
    page = await ann.get(f"/conversations/{resolved}")
    assert 'id="action-reopen"' in page.text and 'id="snooze-menu"' not in page.text
    messages_before = await _count(clean_db, Message)
    for _ in range(2):  # a second click changes nothing
        reopened = await ann.post(f"/conversations/{resolved}/reopen", headers=HX)
        assert reopened.status_code == 204 and _toast(reopened)["level"] == "success"
    conversation = await _get(clean_db, resolved)
    assert conversation.status == ConversationStatus.OPEN and conversation.assignee_id == team.ann
    assert conversation.opened_at is not None and conversation.resolved_at is None
    reopen = [n for n in await _notices(clean_db, resolved) if n.get("kind") == "reopen"]
    assert len(reopen) == 1 and reopen[0]["operator_id"] == team.ann
    assert await _count(clean_db, Message) == messages_before  # nothing to the customer
    async with clean_db() as db:
        actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.conversation_id == resolved))).all()
    assert actions.count("conversation.reopened") == 1 and "conversation.taken" in actions
    # an open conversation (the branch's pool) is no reopen
    pool = await team.customer_writes("Пётр Кузнецов")
    refused = await ann.post(f"/conversations/{pool}/reopen", headers=HX)
    assert refused.status_code == 422 and "решённый или закрытый" in _toast(refused)["text"]


async def test_a_closed_conversation_reopens_unless_the_customer_has_a_newer_one(team, clean_db):
    old = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    async with clean_db() as db, db.begin():
        await db.execute(update(Conversation).where(Conversation.id == old).values(status=ConversationStatus.CLOSED))
    newer = await team.customer_writes("Ирина Смирнова", "Снова я", assignee=team.ann)
    assert newer != old
    ann = await team.client("ann")
    refused = await ann.post(f"/conversations/{old}/reopen", headers=HX)
    assert refused.status_code == 422 and "более новый диалог" in _toast(refused)["text"]
    async with clean_db() as db, db.begin():
        await db.execute(update(Conversation).where(Conversation.id == newer).values(status=ConversationStatus.CLOSED))
    assert (await ann.post(f"/conversations/{old}/reopen", headers=HX)).status_code == 204
    conversation = await _get(clean_db, old)
    assert conversation.status == ConversationStatus.OPEN and conversation.closed_at is None


async def _count(clean_db, model) -> int:
    async with clean_db() as db:
        return await db.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(("path", "form"), [("snooze", {"preset": "hour"}), ("reopen", {})])
async def test_snooze_and_reopen_outside_ones_rights_are_not_found_and_need_the_form_token(team, clean_db, path, form):
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    if path == "reopen":
        async with clean_db() as db, db.begin():
            await db.execute(
                update(Conversation).where(Conversation.id == bobs).values(status=ConversationStatus.RESOLVED)
            )
    before = await _get(clean_db, bobs)
    outbox = await _count(clean_db, OutboxEvent)
    for who in ("ann", "carl"):
        other = await team.client(who)
        assert (await other.post(f"/conversations/{bobs}/{path}", form, headers=HX)).status_code == 404
        assert (await other.post(f"/conversations/{2**62}/{path}", form, headers=HX)).status_code == 404
    bob = await team.client("bob")
    assert (await bob.http.post(f"/conversations/{bobs}/{path}", data=form, headers=HX)).status_code == 403
    after = await _get(clean_db, bobs)
    assert (after.status, after.assignee_id, after.snoozed_at) == (before.status, before.assignee_id, None)
    assert await _count(clean_db, OutboxEvent) == outbox


async def test_the_api_snoozes_and_reopens_once_per_request(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    other = await team.customer_writes("Карл Маркс", assignee=team.carl, branch_id=team.other_branch_id)
    writer = await issue_token(clean_db, branch_ids=[team.branch_id])
    until = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    async with client(team.base_url, writer) as api:
        body = {"until": until.isoformat()}
        first = await api.post(f"/api/v1/conversations/{mine}/snooze", json=body, headers={"Idempotency-Key": "s-1"})
        assert first.status_code == 200, first.text
        assert first.json()["snoozed"] is True and datetime.fromisoformat(first.json()["snoozed_until"]) == until
        again = await api.post(f"/api/v1/conversations/{mine}/snooze", json=body, headers={"Idempotency-Key": "s-1"})
        assert again.json() == first.json()
        same = await api.post(f"/api/v1/conversations/{mine}/snooze", json=body)  # no key: the same snooze
        assert same.status_code == 200
        assert [n.get("kind") for n in await _notices(clean_db, mine)].count("snooze") == 1
        assert_problem(
            await api.post(f"/api/v1/conversations/{mine}/snooze", json={"until": "2026-12-01T10:00:00"}), 422
        )  # no timezone
        assert_problem(await api.post(f"/api/v1/conversations/{mine}/snooze", json={"until": "2001-01-01T10:00Z"}), 422)
        assert_problem(await api.post(f"/api/v1/conversations/{other}/snooze", json={}), 404)
        assert (await api.post(f"/api/v1/conversations/{mine}/reopen")).status_code == 200  # open: nothing to do
        async with clean_db() as db, db.begin():
            await db.execute(
                update(Conversation).where(Conversation.id == mine).values(status=ConversationStatus.RESOLVED)
            )
        reopened = await api.post(f"/api/v1/conversations/{mine}/reopen", headers={"Idempotency-Key": "r-1"})
        assert reopened.status_code == 200 and reopened.json()["status"] == "open"
        assert reopened.json()["assignee"]["id"] == team.ann  # a token's reopen keeps the assignee
        assert (await api.post(f"/api/v1/conversations/{mine}/reopen")).status_code == 200  # open: nothing to do
        assert_problem(await api.post(f"/api/v1/conversations/{other}/reopen"), 404)
    kinds = [n.get("kind") for n in await _notices(clean_db, mine)]
    assert kinds.count("reopen") == 1
    reopen = next(n for n in await _notices(clean_db, mine) if n.get("kind") == "reopen")
    assert reopen["operator_id"] is None
    async with clean_db() as db:
        token_actions = (
            await db.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.conversation_id == mine, AuditEvent.actor_token_id.isnot(None)
                )
            )
        ).all()
    assert {"conversation.snoozed", "conversation.reopened"} <= set(token_actions)
