"""The supervisor's pages over real HTTP: the board's counts and loads per branch, the unassigned
pool with waiting times, the escalated-past-everyone list, dead letters with retry and discard
(audited, CSRF-checked); operators get 403 on every route and junk input never a 500."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from domain.enums import DeliveryStatus, MessageDirection, OperatorStatus, SenderKind
from infra.models import AuditEvent, Conversation, Message, Operator, OutboxEvent
from services import audit
from tests.integration.settings_support import sign_in
from tests.integration.workspace_support import make_team

PAGES = ["/supervisor", "/supervisor/unassigned", "/supervisor/escalated", "/supervisor/dead-letters"]


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="row-(\d+)"', html)]


async def _dead_letter(team, conversation_id: int, text: str = "Ваш заказ готов") -> int:
    async with team.factory() as db, db.begin():
        message = Message(
            conversation_id=conversation_id,
            inbox_id=team.inbox_id,
            direction=MessageDirection.OUT,
            sender_kind=SenderKind.OPERATOR,
            sender_operator_id=team.ann,
            text=text,
            delivery_status=DeliveryStatus.FAILED,
            error="Forbidden: bot was blocked by the user",
        )
        db.add(message)
        await db.flush()
        return message.id


@pytest.mark.parametrize("path", PAGES)
async def test_operators_get_403_supervisors_and_admins_the_page(team, admin, path):
    ann = await team.client("ann")
    assert (await ann.get(path)).status_code == 403
    boss = await team.client("boss")
    assert (await boss.get(path)).status_code == 200
    root = await sign_in(team.base_url, admin["email"], admin["password"])
    assert (await root.get(path)).status_code == 200


async def test_nav_shows_the_supervisor_entry_to_supervisors_only(team):
    assert 'href="/supervisor"' in (await (await team.client("boss")).get("/")).text
    assert 'href="/supervisor"' not in (await (await team.client("ann")).get("/")).text


async def test_board_counts_per_branch_and_each_operators_status_and_load(team):
    await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    await team.customer_writes("Анна Петрова", assignee=team.ann)
    await team.customer_writes("Пётр Кузнецов")
    answered = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    await team.customer_writes("Сергей Попов", branch_id=team.other_branch_id)
    async with team.factory() as db, db.begin():
        await db.execute(update(Conversation).where(Conversation.id == answered).values(last_out_at=func.now()))
        await db.execute(update(Operator).where(Operator.id == team.ann).values(status=OperatorStatus.ONLINE))
    page = await (await team.client("boss")).get("/supervisor")
    assert page.status_code == 200
    sections = re.findall(r'<section class="card board-branch".*?</section>', page.text, re.S)
    home = next(s for s in sections if "Анна" in s)
    other = next(s for s in sections if "Карл" in s)
    assert re.search(r'data-count="open">4<', home) and re.search(r'data-count="unassigned">1<', home)
    assert re.search(r'data-count="waiting">3<', home)
    assert re.search(r'data-count="open">1<', other) and re.search(r'data-count="unassigned">1<', other)
    ann_row = re.search(rf'<tr id="operator-{team.ann}" data-status="(\w+)">.*?data-load>(\d+)<', home, re.S)
    assert ann_row.groups() == ("online", "2")
    bob_row = re.search(rf'<tr id="operator-{team.bob}" data-status="(\w+)">.*?data-load>(\d+)<', home, re.S)
    assert bob_row.groups() == ("offline", "1")
    # HTMX (the live refresh) gets the board alone
    fragment = await (await team.client("boss")).get("/supervisor", headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="board"') and "<html" not in fragment.text


async def test_unassigned_pool_per_branch_with_waiting_time(team):
    old = await team.customer_writes("Пётр Кузнецов", age=timedelta(minutes=30))
    new = await team.customer_writes("Ирина Смирнова")
    elsewhere = await team.customer_writes("Сергей Попов", branch_id=team.other_branch_id)
    await team.customer_writes("Ольга Иванова", assignee=team.bob)
    async with team.factory() as db, db.begin():
        await db.execute(
            update(Conversation).where(Conversation.id == old).values(last_in_at=func.now() - timedelta(minutes=30))
        )
    boss = await team.client("boss")
    everything = await boss.get("/supervisor/unassigned")
    assert set(_rows(everything.text)) == {new, old, elsewhere}
    waited = dict(re.findall(r'<li id="row-(\d+)".*?data-waited="(\d+)"', everything.text, re.S))
    assert 30 * 60 <= int(waited[str(old)]) < 31 * 60
    assert f'href="/conversations/{old}?tab=all"' in everything.text
    assert set(_rows((await boss.get(f"/supervisor/unassigned?branch={team.branch_id}")).text)) == {new, old}
    assert _rows((await boss.get(f"/supervisor/unassigned?branch={team.other_branch_id}")).text) == [elsewhere]
    # junk: an unknown branch or a forged cursor shows the whole pool, never an error
    for junk in ("?branch=abc", "?branch=999999999", "?branch=" + "9" * 30, "?cursor=%%%", "?cursor=" + "x" * 300):
        answer = await boss.get("/supervisor/unassigned" + junk)
        assert answer.status_code in (200, 422), (junk, answer.status_code)
        if answer.status_code == 200:
            assert set(_rows(answer.text)) == {new, old, elsewhere}


async def test_unassigned_pool_pages_by_cursor(team, monkeypatch):
    from web.cabinet import supervisor

    monkeypatch.setattr(supervisor, "PAGE_SIZE", 2)
    made = [await team.customer_writes(f"Клиент {n}", age=timedelta(minutes=n)) for n in range(3)]
    boss = await team.client("boss")
    first = await boss.get("/supervisor/unassigned")
    assert _rows(first.text) == made[:2]
    cursor = re.search(r'href="/supervisor/unassigned\?cursor=([^"]+)"', first.text).group(1)
    assert _rows((await boss.get(f"/supervisor/unassigned?cursor={cursor}")).text) == made[2:]


async def test_escalated_lists_conversations_past_everyone_until_someone_is_assigned(team):
    exhausted = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    calm = await team.customer_writes("Пётр Кузнецов", assignee=team.bob)
    async with team.factory() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id.in_([exhausted, calm]))
            .values(assigned_at=func.now() - timedelta(minutes=10))
        )
        audit.record(db, "conversation.escalation_exhausted", conversation_id=exhausted, details={"timed_out": [1]})
    boss = await team.client("boss")
    assert _rows((await boss.get("/supervisor/escalated")).text) == [exhausted]
    async with team.factory() as db, db.begin():  # someone took it since: off the list
        await db.execute(update(Conversation).where(Conversation.id == exhausted).values(assigned_at=func.now()))
    assert _rows((await boss.get("/supervisor/escalated")).text) == []


async def test_dead_letter_retry_queues_it_once_and_is_audited(team):
    conversation_id = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    letter = await _dead_letter(team, conversation_id)
    boss = await team.client("boss")
    listed = await boss.get("/supervisor/dead-letters")
    assert f'id="dead-{letter}"' in listed.text and "bot was blocked" in listed.text
    # no CSRF token: refused, nothing changes
    forged = await boss.http.post(f"/supervisor/dead-letters/{letter}/retry", data={})
    assert forged.status_code == 403
    done = await boss.post(f"/supervisor/dead-letters/{letter}/retry")
    assert done.status_code == 303 and done.headers["location"] == "/supervisor/dead-letters"
    again = await boss.post(f"/supervisor/dead-letters/{letter}/retry")  # a double click
    assert again.status_code == 303
    async with team.factory() as db:
        assert await db.scalar(select(Message.delivery_status).where(Message.id == letter)) == DeliveryStatus.QUEUED
        retried = select(func.count()).where(AuditEvent.action == "delivery.retried")
        assert await db.scalar(retried) == 1
        deliveries = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id)
        assert await db.scalar(deliveries) >= 1
    assert f'id="dead-{letter}"' not in (await boss.get("/supervisor/dead-letters")).text


async def test_dead_letter_discard_takes_it_off_the_list_audited(team):
    conversation_id = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    letter = await _dead_letter(team, conversation_id)
    ann = await team.client("ann")
    assert (await ann.post(f"/supervisor/dead-letters/{letter}/discard")).status_code == 403
    boss = await team.client("boss")
    assert (await boss.post(f"/supervisor/dead-letters/{letter}/discard")).status_code == 303
    async with team.factory() as db:
        assert await db.scalar(select(Message.discarded_at).where(Message.id == letter)) is not None
        assert await db.scalar(select(func.count()).where(AuditEvent.action == "delivery.discarded")) == 1
    assert f'id="dead-{letter}"' not in (await boss.get("/supervisor/dead-letters")).text


async def test_dead_letters_page_by_id_and_junk_ids_are_never_a_500(team, monkeypatch):
    from web.cabinet import supervisor

    monkeypatch.setattr(supervisor, "PAGE_SIZE", 1)
    conversation_id = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    first, second = [await _dead_letter(team, conversation_id, f"ответ {n}") for n in range(2)]
    boss = await team.client("boss")
    page = await boss.get("/supervisor/dead-letters")
    assert f'id="dead-{second}"' in page.text and f'id="dead-{first}"' not in page.text
    assert f'id="dead-{first}"' in (await boss.get(f"/supervisor/dead-letters?before={second}")).text
    for path in ("/supervisor/dead-letters?before=abc", "/supervisor/dead-letters?before=-1"):
        assert (await boss.get(path)).status_code == 422
    for junk in ("abc", "0", str(2**64), "999999999"):
        answer = await boss.post(f"/supervisor/dead-letters/{junk}/retry")
        assert answer.status_code in (404, 422), (junk, answer.status_code)
    received = await boss.post(f"/supervisor/dead-letters/{first}/retry")
    assert received.status_code == 303
    # not failed any more: a clear refusal as a toast, not an error page
    refused = await boss.post(f"/supervisor/dead-letters/{first}/discard")
    assert refused.status_code == 303


async def test_each_list_answers_htmx_with_its_live_part_alone(team):
    """What supervisor.js fetches after an event: the list (drawn by the row partial) and nothing
    else of the page, for the same address (branch, cursor) the page shows."""
    here = await team.customer_writes("Пётр Кузнецов")
    elsewhere = await team.customer_writes("Сергей Попов", branch_id=team.other_branch_id)
    conversation_id = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    letter = await _dead_letter(team, conversation_id)
    boss = await team.client("boss")
    htmx = {"HX-Request": "true"}
    pool = (await boss.get(f"/supervisor/unassigned?branch={team.branch_id}", headers=htmx)).text
    assert pool.lstrip().startswith('<div id="pool" data-live=') and "<html" not in pool and "<h1" not in pool
    assert _rows(pool) == [here]
    assert elsewhere in _rows((await boss.get("/supervisor/unassigned", headers=htmx)).text)
    escalated = (await boss.get("/supervisor/escalated", headers=htmx)).text
    assert escalated.lstrip().startswith('<div id="escalated" data-live=') and "<html" not in escalated
    dead = (await boss.get("/supervisor/dead-letters", headers=htmx)).text
    assert dead.lstrip().startswith('<div id="dead-letters" data-live="message.status_changed">')
    assert f'<tr id="dead-{letter}">' in dead and "<html" not in dead
    # the whole page still comes without the header
    assert "<html" in (await boss.get("/supervisor/unassigned")).text
