"""What a customer does besides writing: edits a message, presses a button, shares their own
contact card. Over the real webhook route; answers to button presses are seen at the fake."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select, text as sql, update

from domain.enums import ChannelKind, ConversationStatus
from infra.models import Contact, Conversation, Inbox, Message
from infra.security import CredentialBox
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes import Fault, max as fake_max_module
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.integration.conftest import TELEGRAM_CREDENTIALS, wait_until

USER = 6660001
TG_SECRET = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_CREDENTIALS["webhook_secret"]}
MAX_CREDENTIALS = {"token": fake_max_module.TOKEN, "webhook_secret": "max-webhook_secret"}
MAX_SECRET = {"X-Max-Bot-Api-Secret": MAX_CREDENTIALS["webhook_secret"]}
_update_ids = itertools.count(800_000)


def _tg(update: dict) -> dict:
    return update | {"update_id": next(_update_ids)}


async def _post(live_api, channel: str, inbox_id: int, body: dict) -> httpx.Response:
    headers = TG_SECRET if channel == "telegram" else MAX_SECRET
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{live_api.url}/webhooks/{channel}/{inbox_id}", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


@pytest.fixture
async def max_inbox_id(world) -> int:
    async with world.factory() as db, db.begin():
        inbox = Inbox(
            name="MAX bot",
            channel=ChannelKind.MAX,
            settings={"rating_mode": "stars"},
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(MAX_CREDENTIALS),
        )
        db.add(inbox)
        await db.flush()
        return inbox.id


async def _count(world, model) -> int:
    async with world.factory() as db:
        return await db.scalar(select(func.count()).select_from(model))


# --- Item 12: edits keep what the customer wrote first -----------------------------------------


def _edit(original: dict, text: str, edit_date: int) -> dict:
    return _tg({"edited_message": original["message"] | {"text": text, "edit_date": edit_date}})


async def test_edits_keep_the_original_and_an_older_edit_never_overwrites_a_newer_one(
    world, live_api, fake_telegram: FakeTelegram
):
    original = _tg(fake_telegram.make_message(USER, "I ordered 2 kettles"))
    sent_at = original["message"]["date"]
    await _post(live_api, "telegram", world.inbox_id, original)
    newer = _edit(original, "I ordered 3 kettles", sent_at + 120)
    older = _edit(original, "I ordered 4 kettles", sent_at + 60)
    await _post(live_api, "telegram", world.inbox_id, newer)
    await _post(live_api, "telegram", world.inbox_id, newer)  # redelivered
    await _post(live_api, "telegram", world.inbox_id, older)  # arrives late

    async with world.factory() as db:
        message = await db.scalar(select(Message))
    assert message.text == "I ordered 3 kettles"
    assert message.edited_at == datetime.fromtimestamp(sent_at + 120, UTC)

    from infra.models import MessageRevision

    async with world.factory() as db:
        history = (
            await db.execute(
                select(MessageRevision.text, MessageRevision.provider_time)
                .where(MessageRevision.message_id == message.id)
                .order_by(MessageRevision.provider_time)
            )
        ).all()
        announced = (await db.scalars(sql("SELECT payload FROM realtime_events WHERE type = 'message.updated'"))).all()
    assert [(text, at.timestamp()) for text, at in history] == [
        ("I ordered 2 kettles", sent_at),
        ("I ordered 4 kettles", sent_at + 60),
        ("I ordered 3 kettles", sent_at + 120),
    ]
    # each edit that changed what is stored was announced; the redelivery was not
    assert [(p["message_id"], p["change"]) for p in announced] == [(message.id, "edited")] * 2


async def test_an_edit_of_a_message_we_never_saw_creates_no_contact(world, live_api, fake_telegram: FakeTelegram):
    unseen = _tg(fake_telegram.make_message(USER + 1, "never delivered to us"))
    await _post(live_api, "telegram", world.inbox_id, _edit(unseen, "edited", unseen["message"]["date"] + 5))
    for model in (Contact, Conversation, Message):
        assert await _count(world, model) == 0, model.__name__


# --- Item 13: button presses are answered and stored as presses ---------------------------------


async def _answered(fake, method: str, n: int = 1) -> bool:
    return len([r for r in fake.requests(method) if r.status == 200]) >= n


async def _press(world) -> Message:
    async with world.factory() as db:
        return await db.scalar(select(Message).order_by(Message.id.desc()).limit(1))


async def test_a_telegram_button_press_is_answered_and_stored_as_a_press(world, live_api, fake_telegram: FakeTelegram):
    await _post(live_api, "telegram", world.inbox_id, _tg(fake_telegram.make_message(USER, "which size?")))
    pressed = fake_telegram.make_callback(USER, "size:xl", label="XL")
    await _post(live_api, "telegram", world.inbox_id, _tg(pressed))
    await wait_until(lambda: _answered(fake_telegram, "answerCallbackQuery"), timeout=10)
    [answer] = fake_telegram.requests("answerCallbackQuery")
    assert answer.params["callback_query_id"] == pressed["callback_query"]["id"]
    press = await _press(world)
    assert (press.kind, press.text, press.button_data) == ("button", "XL", "size:xl")
    assert await _count(world, Conversation) == 1


async def test_a_max_button_press_is_answered_and_stored_as_a_press(world, live_api, fake_max: FakeMax, max_inbox_id):
    await _post(live_api, "max", max_inbox_id, fake_max.make_message(9101, USER, "which size?"))
    pressed = fake_max.make_callback(9101, USER, "size:xl", label="XL")
    await _post(live_api, "max", max_inbox_id, pressed)
    await wait_until(lambda: _answered(fake_max, "answers"), timeout=10)
    [answer] = fake_max.requests("answers")
    assert answer.params["callback_id"] == pressed["callback"]["callback_id"]
    press = await _press(world)
    assert (press.kind, press.text, press.button_data) == ("button", "XL", "size:xl")


async def test_the_answer_never_holds_up_or_fails_the_webhook(world, live_api, fake_telegram: FakeTelegram):
    fake_telegram.fail_next(Fault.SLOW, method="answerCallbackQuery", delay=3)
    await _post(live_api, "telegram", world.inbox_id, _tg(fake_telegram.make_callback(USER, "slow")))
    # acknowledged while the provider is still sitting on the answer
    assert fake_telegram.requests("answerCallbackQuery") == []
    fake_telegram.fail_next(Fault.SERVER_ERROR, method="answerCallbackQuery")
    await _post(live_api, "telegram", world.inbox_id, _tg(fake_telegram.make_callback(USER, "failing")))
    await wait_until(lambda: len(fake_telegram.requests("answerCallbackQuery")) == 2, timeout=10)
    async with world.factory() as db:
        assert (await db.scalars(select(Message.button_data).order_by(Message.id))).all() == ["slow", "failing"]


async def test_a_rating_button_still_rates_the_resolved_conversation(world, live_api, fake_max: FakeMax, max_inbox_id):
    await _post(live_api, "max", max_inbox_id, fake_max.make_message(9102, USER, "thanks"))
    async with world.factory() as db, db.begin():
        await db.execute(update(Conversation).values(status=ConversationStatus.RESOLVED, resolved_at=func.now()))
    await _post(live_api, "max", max_inbox_id, fake_max.make_callback(9102, USER, "rate:5", label="★★★★★"))
    await wait_until(lambda: _answered(fake_max, "answers"), timeout=10)
    async with world.factory() as db:
        conversation = await db.scalar(select(Conversation))
    assert (conversation.rating, conversation.status) == (5, ConversationStatus.RESOLVED)


# --- Item 14: the sender's own contact card fills the contact's phone ---------------------------


def _card(fake: FakeTelegram, phone: str, owner: int) -> dict:
    return _tg(fake.make_message(USER, None, contact={"phone_number": phone, "first_name": "Ivan", "user_id": owner}))


async def _phone(world) -> str | None:
    async with world.factory() as db:
        return await db.scalar(select(Contact.phone))


async def test_the_senders_own_card_fills_the_phone_and_a_strangers_does_not(
    world, live_api, fake_telegram: FakeTelegram
):
    await _post(live_api, "telegram", world.inbox_id, _card(fake_telegram, "+79160000001", owner=USER + 5))
    assert await _phone(world) is None  # someone else's number
    await _post(live_api, "telegram", world.inbox_id, _card(fake_telegram, "+79161234567", owner=USER))
    assert await _phone(world) == "+79161234567"
    await _post(live_api, "telegram", world.inbox_id, _card(fake_telegram, "+79167654321", owner=USER))
    assert await _phone(world) == "+79167654321"  # their newer card wins over their older one

    # a phone an operator entered is theirs to change: a card does not overwrite it
    async with world.factory() as db, db.begin():
        await db.execute(update(Contact).values(phone="+74950000000", phone_source="operator"))
    await _post(live_api, "telegram", world.inbox_id, _card(fake_telegram, "+79160000009", owner=USER))
    assert await _phone(world) == "+74950000000"


async def test_a_max_own_contact_card_fills_the_phone(world, live_api, fake_max: FakeMax, max_inbox_id):
    card = {
        "type": "contact",
        "payload": {
            "vcf_info": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ivan\r\nTEL;TYPE=cell:+79031234567\r\nEND:VCARD",
            "max_info": {
                "user_id": USER,
                "first_name": "Ivan",
                "is_bot": False,
                "last_activity_time": 1,
                "name": "Ivan",
            },
        },
    }
    await _post(live_api, "max", max_inbox_id, fake_max.make_message(9103, USER, None, attachments=[card]))
    assert await _phone(world) == "+79031234567"
