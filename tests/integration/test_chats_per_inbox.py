"""A contact is one person per channel, but the chat a reply goes to, and whether it can reach
them, belong to the contact's dialog with one inbox (one bot): two bots of a channel serve the
same customer each in their own dialog, a block of one leaves the other working, lifecycle
events apply in the provider's order, and group chats are not served at all."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select, update

from domain.contracts import InboundKind
from domain.enums import ChannelKind, DeliveryStatus
from infra.models import Contact, ContactIdentity, Conversation, Inbox, Message, Operator, OutboxEvent
from infra.security import CredentialBox
from services import conversations
from services.errors import Invalid
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes import max as fake_max_module, telegram as fake_telegram_module
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.integration.conftest import wait_until

USER = 5550001  # one person, writing to two bots of each channel
_update_ids = itertools.count(700_000)
_keys = itertools.count(1)


@dataclass(frozen=True)
class Bot:
    inbox_id: int
    channel: ChannelKind
    token: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        name = "X-Telegram-Bot-Api-Secret-Token" if self.channel == ChannelKind.TELEGRAM else "X-Max-Bot-Api-Secret"
        return {name: self.secret}


async def _bot(world, channel: ChannelKind, token: str, name: str) -> Bot:
    secret = f"secret-{name}"
    async with world.factory() as db, db.begin():
        inbox = Inbox(
            name=name,
            channel=channel,
            settings={"escalation_minutes": 60},
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal({"token": token, "webhook_secret": secret}),
        )
        db.add(inbox)
        await db.flush()
        return Bot(inbox.id, channel, token, secret)


@pytest.fixture
async def telegram_bots(world) -> tuple[Bot, Bot]:
    first = await _bot(world, ChannelKind.TELEGRAM, fake_telegram_module.TOKEN, "tg-shop")
    return first, await _bot(world, ChannelKind.TELEGRAM, fake_telegram_module.SECOND_TOKEN, "tg-service")


@pytest.fixture
async def max_bots(world) -> tuple[Bot, Bot]:
    first = await _bot(world, ChannelKind.MAX, fake_max_module.TOKEN, "max-shop")
    return first, await _bot(world, ChannelKind.MAX, fake_max_module.SECOND_TOKEN, "max-service")


async def _post(live_api, bot: Bot, body: dict) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{live_api.url}/webhooks/{bot.channel.value}/{bot.inbox_id}", json=body, headers=bot.headers
        )
    assert resp.status_code == 200, resp.text


def _telegram(update: dict) -> dict:
    return update | {"update_id": next(_update_ids)}


def _kicked(fake: FakeTelegram, user: int, status: str = "kicked", date: int | None = None) -> dict:
    """my_chat_member of the user's private chat: they blocked the bot (kicked) or restarted it."""
    person = {"id": user, "is_bot": False, "first_name": "Ivan"}
    return _telegram(
        {
            "my_chat_member": {
                "chat": {"id": user, "type": "private", "first_name": "Ivan"},
                "from": person,
                "date": date or int(time.time()),
                "old_chat_member": {"status": "member", "user": fake_telegram_module.BOT_USER},
                "new_chat_member": {"status": status, "user": fake_telegram_module.BOT_USER}
                | ({"until_date": 0} if status == "kicked" else {}),
            }
        }
    )


async def _conversation_of(world, bot: Bot) -> int:
    async def one() -> int | None:
        async with world.factory() as db:
            return await db.scalar(select(Conversation.id).where(Conversation.inbox_id == bot.inbox_id))

    await wait_until(one)
    return await one()


async def _reply(world, operator_id: int, conversation_id: int, text: str) -> int:
    """As the assignee (once the workflow assigned it): the queued message's id."""

    async def assigned() -> bool:
        async with world.factory() as db:
            assignee = await db.scalar(select(Conversation.assignee_id).where(Conversation.id == conversation_id))
        return assignee == operator_id

    await wait_until(assigned)
    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, operator_id)
        message_id, _ = await conversations.send_reply(
            db, operator, conversation_id, text, idempotency_key=f"k{next(_keys)}"
        )
    return message_id


async def _refused(world, operator_id: int, conversation_id: int, text: str) -> bool:
    try:
        await _reply(world, operator_id, conversation_id, text)
    except Invalid:
        return True
    return False


async def _status_is(world, message_id: int, status: DeliveryStatus) -> bool:
    async with world.factory() as db:
        return await db.scalar(select(Message.delivery_status).where(Message.id == message_id)) == status


# --- Item 1: replies go to the conversation's own chat, through its own bot --------------------


async def test_two_telegram_bots_answer_the_same_user_each_in_their_own_dialog_and_a_block_stays_with_its_bot(
    world, engine_stack, live_api, fake_telegram: FakeTelegram, telegram_bots
):
    shop, service = telegram_bots
    op = await world.operator()
    await _post(live_api, shop, _telegram(fake_telegram.make_message(USER, "where is my order?")))
    await _post(live_api, service, _telegram(fake_telegram.make_message(USER, "the kettle is broken")))
    at_shop, at_service = await _conversation_of(world, shop), await _conversation_of(world, service)
    assert at_shop != at_service

    first = await _reply(world, op, at_shop, "On its way")
    second = await _reply(world, op, at_service, "We will fix it")
    for message_id in (first, second):
        await wait_until(lambda m=message_id: _status_is(world, m, DeliveryStatus.SENT))
    assert [(m.chat_id, m.text) for m in fake_telegram.sent_messages(bot=shop.token)] == [(str(USER), "On its way")]
    assert [(m.chat_id, m.text) for m in fake_telegram.sent_messages(bot=service.token)] == [
        (str(USER), "We will fix it")
    ]

    # the customer blocks the shop's bot: the service bot still reaches them
    await _post(live_api, shop, _kicked(fake_telegram, USER))
    assert await _refused(world, op, at_shop, "Hello?")
    third = await _reply(world, op, at_service, "The technician comes at 5")
    await wait_until(lambda: _status_is(world, third, DeliveryStatus.SENT))
    assert [m.text for m in fake_telegram.sent_messages(bot=service.token)][-1] == "The technician comes at 5"
    assert [m.text for m in fake_telegram.sent_messages(bot=shop.token)] == ["On its way"]


async def test_two_max_bots_answer_the_same_user_each_in_their_own_dialog_and_a_block_stays_with_its_bot(
    world, engine_stack, live_api, fake_max: FakeMax, max_bots
):
    """MAX gives each bot its own dialog id with the same user; a bot cannot write into another's."""
    shop, service = max_bots
    op = await world.operator()
    await _post(live_api, shop, fake_max.make_message(9001, USER, "where is my order?", bot=shop.token))
    await _post(live_api, service, fake_max.make_message(9002, USER, "the kettle is broken", bot=service.token))
    at_shop, at_service = await _conversation_of(world, shop), await _conversation_of(world, service)
    async with world.factory() as db:
        assert await db.scalar(select(func.count()).select_from(ContactIdentity)) == 1  # one person

    first = await _reply(world, op, at_shop, "On its way")
    second = await _reply(world, op, at_service, "We will fix it")
    for message_id in (first, second):
        await wait_until(lambda m=message_id: _status_is(world, m, DeliveryStatus.SENT))
    assert [(m.chat_id, m.text) for m in fake_max.sent_messages(bot=shop.token)] == [("9001", "On its way")]
    assert [(m.chat_id, m.text) for m in fake_max.sent_messages(bot=service.token)] == [("9002", "We will fix it")]

    await _post(live_api, shop, fake_max.make_lifecycle("bot_stopped", 9001, USER, bot=shop.token))
    assert await _refused(world, op, at_shop, "Hello?")
    third = await _reply(world, op, at_service, "The technician comes at 5")
    await wait_until(lambda: _status_is(world, third, DeliveryStatus.SENT))
    assert [m.text for m in fake_max.sent_messages(9002)][-1] == "The technician comes at 5"


async def test_a_group_message_creates_nothing_and_the_private_chat_gets_the_replies(
    world, engine_stack, live_api, fake_telegram: FakeTelegram, fake_max: FakeMax, telegram_bots, max_bots
):
    shop = telegram_bots[0]
    group = -1002000000001
    await _post(live_api, shop, _telegram(fake_telegram.make_message(group, "hi all", user_id=USER)))
    await _post(live_api, shop, _telegram(fake_telegram.make_message(group, "anyone?", user_id=USER)))
    in_a_chat = fake_max.make_message(-7001, USER, "hi all", bot=max_bots[0].token)
    in_a_chat["message"]["recipient"]["chat_type"] = "chat"
    await _post(live_api, max_bots[0], in_a_chat)
    async with world.factory() as db:
        for model in (Contact, ContactIdentity, Conversation, Message):
            assert await db.scalar(select(func.count()).select_from(model)) == 0, model.__name__

    op = await world.operator()
    await _post(live_api, shop, _telegram(fake_telegram.make_message(USER, "in private now")))
    reply = await _reply(world, op, await _conversation_of(world, shop), "Hello in private")
    await wait_until(lambda: _status_is(world, reply, DeliveryStatus.SENT))
    assert [(m.chat_id, m.text) for m in fake_telegram.sent_messages()] == [(str(USER), "Hello in private")]


# --- Item 11: lifecycle events apply in the provider's order ---------------------------------


async def test_a_redelivered_older_bot_started_does_not_undo_a_stop(
    world, engine_stack, live_api, fake_max: FakeMax, max_bots
):
    shop = max_bots[0]
    op = await world.operator()
    now = int(time.time() * 1000)
    started = fake_max.make_lifecycle("bot_started", 9001, USER, timestamp=now - 60_000, bot=shop.token)
    await _post(live_api, shop, started)
    await _post(live_api, shop, fake_max.make_message(9001, USER, "hello", bot=shop.token))
    conversation_id = await _conversation_of(world, shop)
    await _post(live_api, shop, fake_max.make_lifecycle("bot_stopped", 9001, USER, timestamp=now, bot=shop.token))
    await _post(live_api, shop, started)  # MAX retried an old delivery
    assert await _refused(world, op, conversation_id, "are you still there?")
    assert fake_max.sent_messages() == []

    # a start after the stop makes them reachable again
    restarted = fake_max.make_lifecycle("bot_started", 9001, USER, timestamp=now + 1, bot=shop.token)
    await _post(live_api, shop, restarted)
    again = await _reply(world, op, conversation_id, "welcome back")
    await wait_until(lambda: _status_is(world, again, DeliveryStatus.SENT))
    assert [m.text for m in fake_max.sent_messages(9001)] == ["welcome back"]


async def test_a_redelivered_older_telegram_unblock_does_not_undo_a_block(
    world, engine_stack, live_api, fake_telegram: FakeTelegram, telegram_bots
):
    shop = telegram_bots[0]
    op = await world.operator()
    now = int(time.time())
    unblocked = _kicked(fake_telegram, USER, "member", date=now - 60)
    await _post(live_api, shop, _telegram(fake_telegram.make_message(USER, "hello")))
    conversation_id = await _conversation_of(world, shop)
    await _post(live_api, shop, unblocked)
    await _post(live_api, shop, _kicked(fake_telegram, USER, date=now))
    await _post(live_api, shop, unblocked)  # redelivered
    assert await _refused(world, op, conversation_id, "are you still there?")
    assert fake_telegram.sent_messages() == []


# --- Item 16: a reply to an unreachable contact is refused up front ----------------------------


async def test_a_reply_to_a_contact_who_blocked_the_bot_is_refused_with_a_typed_error(world):
    result = await ingest(world.factory, world.event("unreachable-1", "hi"))
    op = await world.operator()
    async with world.factory() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == result.conversation_id)
            .values(assignee_id=op, opened_at=func.now())
        )
        accepted, _ = await conversations.send_reply(
            db, await db.get(Operator, op), result.conversation_id, "hello", idempotency_key="before"
        )
    await ingest(world.factory, world.event("unreachable-1", kind=InboundKind.BLOCKED, message_id=None))

    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, op)
        with pytest.raises(Invalid) as refused:
            await conversations.send_reply(db, operator, result.conversation_id, "anyone?", idempotency_key="after")
        # a retried click of the reply accepted before the block still gets that reply back
        again, created = await conversations.send_reply(
            db, operator, result.conversation_id, "hello", idempotency_key="before"
        )
    assert refused.value.code == "contact_unreachable"
    assert "blocked" in str(refused.value)
    assert (again, created) == (accepted, False)
    async with world.factory() as db:
        texts = (await db.scalars(select(Message.text).where(Message.direction == "out"))).all()
        deliveries = await db.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.kind == "deliver"))
    assert texts == ["hello"] and deliveries == 1  # nothing queued for the refused one
