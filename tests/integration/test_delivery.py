"""Outgoing messages end to end: webhook in, operator reply out through the fake provider,
with retries, retry_after, blocked contacts, ordering and dead letters."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import httpx
import pytest
from sqlalchemy import select

from domain.enums import DeliveryStatus, OperatorRole, OperatorStatus
from infra.files import FileStore
from infra.models import Attachment, ContactChat, Conversation, DeliveryAttempt, Message, Operator
from services import conversations, deadletters, errors
from services.ingest import ingest
from tests.fakes.faults import Fault
from tests.integration.conftest import wait_until
from tests.integration.test_webhooks import SECRET, update


async def _reply(world, operator_id: int, conversation_id: int, text: str, key: str) -> int:
    """As the assignee: waits until the conversation's workflow has routed and assigned it."""

    async def assigned() -> bool:
        async with world.factory() as db:
            return (
                await db.scalar(select(Conversation.assignee_id).where(Conversation.id == conversation_id))
                == operator_id
            )

    await wait_until(assigned)
    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, operator_id)
        message_id, _ = await conversations.send_reply(db, operator, conversation_id, text, idempotency_key=key)
    return message_id


async def _assignee(world, conversation_id: int) -> int | None:
    async with world.factory() as db:
        return await db.scalar(select(Conversation.assignee_id).where(Conversation.id == conversation_id))


async def _status(world, message_id: int) -> DeliveryStatus:
    async with world.factory() as db:
        return await db.scalar(select(Message.delivery_status).where(Message.id == message_id))


async def _is(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def test_webhook_in_reply_out_exactly_once_to_the_right_chat(world, engine_stack, live_api, fake_telegram):
    op = await world.operator()
    async with httpx.AsyncClient() as http:
        for _ in range(2):  # Telegram retried the webhook: still one conversation and message
            resp = await http.post(
                f"{live_api.url}/webhooks/telegram/{world.inbox_id}",
                json=update(501, "hi there", user=777001),
                headers=SECRET,
            )
            assert resp.status_code == 200
    async with world.factory() as db:
        conversation_id = await db.scalar(select(Message.conversation_id))
    message_id = await _reply(world, op, conversation_id, "Hello, **Ann**! <b>not a tag</b>", "r1")
    await _reply(world, op, conversation_id, "Hello, **Ann**! <b>not a tag</b>", "r1")  # double click
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT))
    await asyncio.sleep(0.5)
    sent = fake_telegram.sent_messages()
    assert len(sent) == 1 and sent[0].chat_id == "777001" and sent[0].method == "sendMessage"
    assert sent[0].text == "Hello, <b>Ann</b>! &lt;b&gt;not a tag&lt;/b&gt;" and sent[0].format == "HTML"
    async with world.factory() as db:
        message = await db.get(Message, message_id)
        attempts = (await db.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message_id))).all()
    assert message.sent_provider_ids == [f"777001:{sent[0].message_id}"]  # chat-scoped, as inbound ids
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "sent")]


async def test_a_max_conversation_is_answered_through_max_never_telegram(world, engine_stack, fake_telegram, fake_max):
    conversation_id = await world.max_customer_writes("424242", "98765", "привет")
    op = await world.operator()
    message_id = await _reply(world, op, conversation_id, "Здравствуйте!", "m1")
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT))
    assert [m.text for m in fake_max.sent_messages()] == ["Здравствуйте!"]
    assert fake_max.sent_messages()[0].chat_id == "98765"
    assert fake_telegram.requests() == []


async def test_a_reply_with_a_stored_file_is_sent_with_the_stores_bytes(
    world, engine_stack, app_settings, fake_telegram
):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900200", "send me the invoice"))
    pdf = b"%PDF-1.4 invoice " + bytes(range(256))
    stored = FileStore.from_settings(app_settings).put(pdf)
    await wait_until(lambda: _is(_assignee(world, result.conversation_id), op))
    async with world.factory() as db, db.begin():
        message_id, _ = await conversations.send_reply(
            db, await db.get(Operator, op), result.conversation_id, "Here it is", idempotency_key="file-1"
        )
        db.add(
            Attachment(
                message_id=message_id,
                kind="document",
                file_name="invoice.pdf",
                mime_type="application/pdf",
                size=stored.size,
                sha256=stored.sha256,
            )
        )
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT))
    [sent] = fake_telegram.sent_messages("900200")
    assert (sent.method, sent.text) == ("sendDocument", "Here it is")
    assert [(f.filename, f.content) for f in sent.files] == [("invoice.pdf", pdf)]


async def test_blocked_contact_becomes_unreachable_without_retries(world, engine_stack, fake_telegram):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900100", "hi"))
    fake_telegram.set_chat_fault("900100", Fault.BLOCKED)
    first = await _reply(world, op, result.conversation_id, "Are you there?", "b1")
    await wait_until(lambda: _is(_status(world, first), DeliveryStatus.FAILED))
    with pytest.raises(errors.ContactUnreachable):  # refused up front: nothing queued to fail
        await _reply(world, op, result.conversation_id, "Hello?", "b2")
    assert len(fake_telegram.requests("sendMessage")) == 1
    async with world.factory() as db:
        chat = await db.scalar(select(ContactChat))
        failed = (await db.scalars(select(Message.error).where(Message.direction == "out"))).all()
    assert chat.reachable is False and "blocked" in chat.unreachable_reason
    assert len(failed) == 1 and failed[0]


async def test_429_waits_exactly_retry_after(world, engine_stack, fake_telegram):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900200", "hi"))
    fake_telegram.fail_next(Fault.RATE_LIMIT, 1, method="sendMessage", retry_after=3)
    message_id = await _reply(world, op, result.conversation_id, "after the limit", "l1")
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT), timeout=20)
    calls = fake_telegram.requests("sendMessage")
    assert [c.status for c in calls] == [429, 200]
    assert 3.0 <= calls[1].at - calls[0].at < 4.5


async def test_order_holds_while_an_earlier_message_is_retried(world, engine_stack, fake_telegram):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900300", "hi"))
    fake_telegram.fail_next(Fault.SERVER_ERROR, 2, method="sendMessage")
    ids = [await _reply(world, op, result.conversation_id, f"part {i}", f"o{i}") for i in range(4)]

    async def all_sent() -> bool:
        return all([await _status(world, i) == DeliveryStatus.SENT for i in ids])

    await wait_until(all_sent, timeout=30)
    assert [m.text for m in fake_telegram.sent_messages("900300")] == [f"part {i}" for i in range(4)]
    # the per-chat limit (1/s) held: no 429 would have been provoked
    assert fake_telegram.rate_violations()["per_chat"] == 0


async def test_a_failed_message_does_not_block_the_next_and_can_be_retried(world, engine_stack, fake_telegram):
    op = await world.operator()
    supervisor = await world.operator(role=OperatorRole.SUPERVISOR, status=OperatorStatus.OFFLINE)
    bystander = await world.operator(status=OperatorStatus.OFFLINE)  # same branch, not theirs
    result = await ingest(world.factory, world.event("900400", "hi"))
    fake_telegram.fail_next(Fault.CHAT_NOT_FOUND, 1, method="sendMessage")
    first = await _reply(world, op, result.conversation_id, "first", "f1")
    second = await _reply(world, op, result.conversation_id, "second", "f2")
    await wait_until(lambda: _is(_status(world, second), DeliveryStatus.SENT), timeout=20)
    assert await _status(world, first) == DeliveryStatus.FAILED

    async with world.factory() as db, db.begin():
        sup = await db.get(Operator, supervisor)
        operator = await db.get(Operator, bystander)
        assert [m.id for m in await deadletters.list_dead_letters(db, sup)] == [first]
        try:
            await deadletters.retry_dead_letter(db, operator, first)
            raise AssertionError("an operator may not retry another's dead letters")
        except errors.Forbidden:
            pass
        await deadletters.retry_dead_letter(db, sup, first)
    await wait_until(lambda: _is(_status(world, first), DeliveryStatus.SENT), timeout=20)
    assert [m.text for m in fake_telegram.sent_messages("900400")] == ["second", "first"]
    async with world.factory() as db:
        assert await deadletters.list_dead_letters(db, await db.get(Operator, supervisor)) == []


async def test_long_text_goes_out_in_ordered_parts(world, engine_stack, fake_telegram):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900500", "hi"))
    paragraphs = [f"Paragraph {i}: " + "word " * 300 for i in range(8)]  # ~12,000 characters
    message_id = await _reply(world, op, result.conversation_id, "\n\n".join(paragraphs), "long")
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT), timeout=30)
    sent = fake_telegram.sent_messages("900500")
    assert len(sent) >= 3 and all(len(m.text) <= 4096 for m in sent)
    assert "".join(m.text for m in sent).replace("\n", "").replace(" ", "") == "".join(paragraphs).replace(" ", "")
    async with world.factory() as db:
        assert len((await db.get(Message, message_id)).sent_provider_ids) == len(sent)


async def test_each_part_of_a_split_message_takes_its_own_per_chat_slot(world, engine_stack, fake_telegram):
    op = await world.operator()
    result = await ingest(world.factory, world.event("900600", "hi"))
    paragraphs = [f"Paragraph {i}: " + "word " * 300 for i in range(6)]  # ~9,100 characters: 3 parts
    message_id = await _reply(world, op, result.conversation_id, "\n\n".join(paragraphs), "split")
    await wait_until(lambda: _is(_status(world, message_id), DeliveryStatus.SENT), timeout=30)
    calls = fake_telegram.requests("sendMessage", "900600")
    assert len(calls) == 3 and all(c.status == 200 for c in calls)
    # Telegram allows one message per second in a chat, and counts each part as one
    assert fake_telegram.rate_violations()["per_chat"] == 0, [round(b.at - a.at, 3) for a, b in pairwise(calls)]
