"""The composer and the conversation's actions over real HTTP: a reply sent once per draft key,
notes, the refusal when the contact cannot be reached, canned replies, read marks, take over,
resolve, transfer, priority, labels, retry; and every one of them refused, with nothing written,
for a caller outside the conversation (404) or without the form's token (403)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select, update

from domain.enums import DeliveryStatus, MessageDirection
from infra.models import (
    AuditEvent,
    CannedReply,
    ContactChat,
    Conversation,
    ConversationLabel,
    Label,
    Message,
    OutboxEvent,
    ReadState,
)
from tests.integration.workspace_support import make_team

HX = {"HX-Request": "true"}


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


def _key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def _toast(response) -> dict:
    return json.loads(response.headers["HX-Trigger"])["toast"]


async def _out(clean_db, conversation_id: int) -> list[Message]:
    async with clean_db() as db:
        found = await db.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.direction == MessageDirection.OUT)
            .order_by(Message.id)
        )
        return list(found)


async def test_a_reply_is_sent_once_per_draft_and_the_composer_comes_back_empty(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    key = _key(page.text)
    sent = await ann.post(
        f"/conversations/{mine}/messages", {"text": "Здравствуйте!", "idempotency_key": key}, headers=HX
    )
    assert sent.status_code == 200 and 'id="composer"' in sent.text
    assert _key(sent.text) != key and "Здравствуйте!" not in sent.text
    # the same draft again (a double click, a resubmitted form): still one message
    again = await ann.post(f"/conversations/{mine}/messages", {"text": "Здравствуйте!", "idempotency_key": key})
    assert again.status_code == 303 and again.headers["location"] == f"/conversations/{mine}"
    replies = await _out(clean_db, mine)
    assert [(m.text, m.is_note, m.delivery_status) for m in replies] == [
        ("Здравствуйте!", False, DeliveryStatus.QUEUED)
    ]
    async with clean_db() as db:
        queued = await db.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.kind == "deliver"))
    assert queued == 1


async def test_a_note_is_kept_for_staff_and_queued_for_no_one(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    await ann.post(
        f"/conversations/{mine}/messages", {"text": "Проверить склад", "note": "1", "idempotency_key": _key(page.text)}
    )
    (note,) = await _out(clean_db, mine)
    assert note.is_note and note.text == "Проверить склад"
    shown = await ann.get(f"/conversations/{mine}")
    assert re.search(rf'<li id="message-{note.id}"[^>]*data-note="true"', shown.text)
    assert "Заметка (видна только сотрудникам)" in shown.text


async def test_an_unreachable_contact_is_refused_with_the_reason_and_the_text_kept(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    async with clean_db() as db, db.begin():
        identity = await db.scalar(select(Conversation.identity_id).where(Conversation.id == mine))
        await db.execute(update(ContactChat).where(ContactChat.identity_id == identity).values(reachable=False))
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    assert 'id="unreachable"' in page.text
    refused = await ann.post(
        f"/conversations/{mine}/messages", {"text": "Вы тут?", "idempotency_key": _key(page.text)}, headers=HX
    )
    assert refused.status_code == 200
    assert 'id="composer-error"' in refused.text and "заблокировал или остановил этого бота" in refused.text
    assert "Вы тут?" in refused.text
    assert await _out(clean_db, mine) == []
    plain = await ann.post(f"/conversations/{mine}/messages", {"text": "Вы тут?", "idempotency_key": "k" * 20})
    assert plain.status_code == 422 and 'id="composer-error"' in plain.text


async def test_empty_or_junk_composer_input_is_a_readable_refusal(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    empty = await ann.post(f"/conversations/{mine}/messages", {"text": "   ", "idempotency_key": "k" * 20}, headers=HX)
    assert empty.status_code == 200 and "Сообщение пустое" in empty.text
    junk = await ann.post(f"/conversations/{mine}/messages", {"text": "x", "idempotency_key": "../../etc"}, headers=HX)
    assert junk.status_code == 422 and _toast(junk)["level"] == "error"
    assert await _out(clean_db, mine) == []


async def test_the_preview_is_what_the_channel_renders_with_the_customers_text_escaped(team):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    shown = await ann.post(
        f"/conversations/{mine}/preview",
        {"text": "**Готово** _сегодня_ <script>x</script> [сайт](https://example.com)"},
    )
    assert shown.status_code == 200
    assert shown.text.strip() == (
        '<b>Готово</b> <i>сегодня</i> &lt;script&gt;x&lt;/script&gt; <a href="https://example.com">сайт</a>'
    )


async def test_canned_replies_by_shortcut_with_variables_filled(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    async with clean_db() as db, db.begin():
        db.add_all(
            [
                CannedReply(shortcut="hello", text="Здравствуйте, {contact_name}! Это {operator_name}."),
                CannedReply(shortcut="help", text="Чем помочь?", branch_id=team.other_branch_id),
            ]
        )
    ann = await team.client("ann")
    found = await ann.get(f"/conversations/{mine}/canned?q=he", headers=HX)
    assert 'data-text="Здравствуйте, Ирина Смирнова! Это Анна."' in found.text
    assert "Чем помочь" not in found.text  # another branch's


async def test_read_marks_move_forward_only_and_only_for_who_may_act(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    await team.customer_writes("Ирина Смирнова", "ещё", assignee=team.ann)
    async with clean_db() as db:
        first, last = (await db.execute(select(func.min(Message.id), func.max(Message.id)))).one()
    ann = await team.client("ann")
    assert re.search(r'class="count-unread"[^>]*>\s*2', (await ann.get("/")).text)
    assert (await ann.post(f"/conversations/{mine}/read", {"up_to": last})).status_code == 204
    assert (await ann.post(f"/conversations/{mine}/read", {"up_to": first})).status_code == 204
    boss = await team.client("boss")
    assert (await boss.post(f"/conversations/{mine}/read", {"up_to": last})).status_code == 204
    async with clean_db() as db:
        marks = (await db.execute(select(ReadState.operator_id, ReadState.last_read_message_id))).all()
    assert marks == [(team.ann, last)]
    assert "count-unread" not in (await ann.get("/")).text
    # a second conversation read as well: each is counted by its own read mark
    other = await team.customer_writes("Пётр Кузнецов", assignee=team.ann)
    assert "<title>(1) Диалоги — Switchboard</title>" in (await ann.get("/")).text
    await ann.get(f"/conversations/{other}")
    assert "<title>Диалоги — Switchboard</title>" in (await ann.get("/")).text


async def test_take_over_resolve_transfer_priority_labels(team, clean_db):
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    boss = await team.client("boss")
    # watching: acting is refused with the reason, nothing is written
    refused = await boss.post(f"/conversations/{bobs}/resolve", headers=HX)
    assert refused.status_code == 422 and "Только просмотр" in _toast(refused)["text"]
    taken = await boss.post(f"/conversations/{bobs}/take", headers=HX)
    assert taken.status_code == 200 and _toast(taken)["text"] == "Диалог теперь ваш."
    assert 'id="composer"' in taken.text
    async with clean_db() as db:
        assert (await db.get(Conversation, bobs)).assignee_id == team.boss
    resolved = await boss.post(f"/conversations/{bobs}/resolve", headers=HX)
    assert resolved.status_code == 204 and _toast(resolved)["level"] == "success"
    moved = await boss.post(f"/conversations/{bobs}/transfer", {"to_branch": team.other_branch_id}, headers=HX)
    assert moved.status_code == 204
    neither = await boss.post(f"/conversations/{bobs}/transfer", {"to_branch": "", "to_operator": ""}, headers=HX)
    assert neither.status_code == 422 and "Выберите" in _toast(neither)["text"]
    junk = await boss.post(f"/conversations/{bobs}/transfer", {"to_operator": "abc"}, headers=HX)
    assert junk.status_code == 422
    async with clean_db() as db:
        notices = (
            await db.scalars(
                select(OutboxEvent.payload).where(OutboxEvent.conversation_id == bobs).order_by(OutboxEvent.id)
            )
        ).all()
    kinds = [n.get("kind") for n in notices]
    assert kinds.count("resolve") == 1 and kinds.count("transfer") == 1
    assert (await boss.post(f"/conversations/{bobs}/priority", {"priority": "3"}, headers=HX)).status_code == 204
    assert (await boss.post(f"/conversations/{bobs}/priority", {"priority": "9"}, headers=HX)).status_code == 422
    async with clean_db() as db, db.begin():
        label = Label(name="VIP", colour="#aa0000")
        db.add(label)
        await db.flush()
        label_id = label.id
    assert (await boss.post(f"/conversations/{bobs}/labels", [("label", label_id)], headers=HX)).status_code == 204
    gone = await boss.post(f"/conversations/{bobs}/labels", [("label", 999999)], headers=HX)
    assert gone.status_code == 422
    async with clean_db() as db:
        assert (await db.get(Conversation, bobs)).priority == 3
        assert (await db.scalars(select(ConversationLabel.label_id))).all() == [label_id]
        actions = set((await db.scalars(select(AuditEvent.action).where(AuditEvent.conversation_id == bobs))).all())
    assert {"conversation.taken", "conversation.priority", "conversation.labels"} <= actions


async def test_a_failed_reply_is_retried_by_its_assignee_or_a_supervisor_and_only_in_its_conversation(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    other = await team.customer_writes("Пётр Кузнецов", assignee=team.ann)
    failed_ids = []
    async with clean_db() as db, db.begin():
        inbox_id = await db.scalar(select(Conversation.inbox_id).where(Conversation.id == mine))
        for text in ("не дошло", "и это не дошло"):
            failed = Message(
                conversation_id=mine, inbox_id=inbox_id, direction=MessageDirection.OUT, sender_kind="operator",
                text=text, delivery_status=DeliveryStatus.FAILED, error="Forbidden: bot was blocked by the user",
            )  # fmt: skip
            db.add(failed)
            await db.flush()
            failed_ids.append(failed.id)
    first, second = failed_ids
    for who in ("bob", "carl"):  # the same branch but not theirs; another branch
        client = await team.client(who)
        assert (await client.post(f"/conversations/{mine}/messages/{first}/retry", headers=HX)).status_code == 404
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    assert "bot was blocked by the user" in page.text and f"/messages/{first}/retry" in page.text
    assert (await ann.post(f"/conversations/{other}/messages/{first}/retry", headers=HX)).status_code == 404
    assert (await ann.post(f"/conversations/{mine}/messages/{first}/retry", headers=HX)).status_code == 204
    boss = await team.client("boss")  # watching, read-only: the dead-letter list's rights
    assert (await boss.post(f"/conversations/{other}/messages/{second}/retry", headers=HX)).status_code == 404
    assert f"/messages/{second}/retry" in (await boss.get(f"/conversations/{mine}")).text
    assert (await boss.post(f"/conversations/{mine}/messages/{second}/retry", headers=HX)).status_code == 204
    async with clean_db() as db:
        assert {(await db.get(Message, i)).delivery_status for i in failed_ids} == {DeliveryStatus.QUEUED}
        retried_by = (
            await db.scalars(select(AuditEvent.actor_operator_id).where(AuditEvent.action == "delivery.retried"))
        ).all()
    assert sorted(retried_by) == sorted([team.ann, team.boss])


ACTIONS = [
    ("/conversations/{id}/messages", {"text": "hi", "idempotency_key": "k" * 20}),
    ("/conversations/{id}/messages", {"text": "hi", "note": "1", "idempotency_key": "n" * 20}),
    ("/conversations/{id}/read", {"up_to": 1}),
    ("/conversations/{id}/take", {}),
    ("/conversations/{id}/resolve", {}),
    ("/conversations/{id}/transfer", {"to_branch": 1}),
    ("/conversations/{id}/priority", {"priority": 2}),
    ("/conversations/{id}/labels", {}),
    ("/conversations/{id}/messages/1/retry", {}),
    ("/conversations/{id}/bitrix24", {}),
    ("/conversations/{id}/preview", {"text": "hi"}),
    ("/conversations/{id}/typing", {}),
    ("/conversations/{id}/presence", {"viewing": "true"}),
]


@pytest.mark.parametrize(("path", "form"), ACTIONS, ids=[f"{p.rsplit('/', 1)[-1]}-{len(f)}" for p, f in ACTIONS])
async def test_acting_on_a_conversation_outside_ones_rights_is_not_found_and_writes_nothing(team, clean_db, path, form):
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    async with clean_db() as db:
        before = (
            await db.scalar(select(func.count()).select_from(Message)),
            await db.scalar(select(func.count()).select_from(OutboxEvent)),
            await db.scalar(select(func.count()).select_from(ReadState)),
            await db.get(Conversation, bobs),
        )
    for who in ("ann", "carl"):  # the same branch but not hers; another branch
        client = await team.client(who)
        answer = await client.post(path.format(id=bobs), form, headers=HX)
        assert answer.status_code == 404, (who, answer.status_code)
        guessed = await client.post(path.format(id=2**62), form, headers=HX)
        assert guessed.status_code == 404
    bob = await team.client("bob")
    no_token = await bob.http.post(path.format(id=bobs), data=form, headers=HX)
    assert no_token.status_code == 403
    async with clean_db() as db:
        after = (
            await db.scalar(select(func.count()).select_from(Message)),
            await db.scalar(select(func.count()).select_from(OutboxEvent)),
            await db.scalar(select(func.count()).select_from(ReadState)),
            await db.get(Conversation, bobs),
        )
    assert after[:3] == before[:3]
    assert (after[3].assignee_id, after[3].priority, after[3].status) == (
        before[3].assignee_id,
        before[3].priority,
        before[3].status,
    )
