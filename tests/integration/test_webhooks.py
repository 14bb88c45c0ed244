"""Channel webhooks over HTTP: secrets, bad bodies, duplicates (provider retries)."""

import json

import httpx
import pytest
from sqlalchemy import func, select

from channels.payload import MAX_BODY_BYTES
from domain.enums import ChannelKind
from infra.models import Contact, ContactIdentity, Conversation, Inbox, Message
from infra.security import CredentialBox
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.conftest import TELEGRAM_CREDENTIALS, refusing_text
from tests.unit.channels.support import PAYLOADS

SECRET = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_CREDENTIALS["webhook_secret"]}
JSON = {"content-type": "application/json"}


def update(update_id: int, text: str = "hello", user: int = 42) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1790000000,
            "chat": {"id": user, "type": "private", "first_name": "Ann"},
            "from": {"id": user, "is_bot": False, "first_name": "Ann", "language_code": "ru"},
            "text": text,
        },
    }


async def _messages(factory) -> int:
    async with factory() as db:
        return await db.scalar(select(func.count()).select_from(Message))


async def test_secret_is_checked_and_nothing_is_stored_without_it(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, json=update(1))
        wrong = await http.post(url, json=update(1), headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert await _messages(world.factory) == 0


async def test_bad_bodies_get_4xx_never_500(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with httpx.AsyncClient() as http:
        not_json = await http.post(url, content=b"{not json", headers=SECRET)
        not_update = await http.post(url, json=[1, 2], headers=SECRET)
        unknown_kind = await http.post(url, json={"update_id": 9, "poll": {"id": "1"}}, headers=SECRET)
        wrong_channel = await http.post(f"{live_api.url}/webhooks/max/{world.inbox_id}", json={}, headers=SECRET)
        no_inbox = await http.post(f"{live_api.url}/webhooks/telegram/999999", json=update(1), headers=SECRET)
    assert (not_json.status_code, not_update.status_code) == (400, 400)
    assert unknown_kind.status_code == 200  # acknowledged, or Telegram retries it for a day
    assert (wrong_channel.status_code, no_inbox.status_code) == (404, 404)
    assert await _messages(world.factory) == 0


async def test_a_retried_update_is_stored_once(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with httpx.AsyncClient() as http:
        for _ in range(3):
            assert (await http.post(url, json=update(77, "where is my order?"), headers=SECRET)).status_code == 200
        assert (await http.post(url, json=update(78, "hello?"), headers=SECRET)).status_code == 200
    async with world.factory() as db:
        texts = (await db.scalars(select(Message.text).order_by(Message.id))).all()
        conversations = await db.scalar(select(func.count()).select_from(Conversation))
    assert texts == ["where is my order?", "hello?"] and conversations == 1


async def test_an_update_the_database_refuses_is_acknowledged_and_the_next_one_stored(world, live_api):
    """Telegram holds back a bot's later updates until one is accepted: refusing it forever with
    a 5xx would stop the inbox. Its data will not change on a retry, so it is skipped."""
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with refusing_text(world.factory, "poison"), httpx.AsyncClient() as http:
        refused = await http.post(url, json=update(301, "poison", user=4301), headers=SECRET)
        nul = await http.post(url, json=update(302, "pasted\u0000text", user=4302), headers=SECRET)
        fine = await http.post(url, json=update(303, "second customer", user=4303), headers=SECRET)
    assert (refused.status_code, nul.status_code, fine.status_code) == (200, 200, 200)
    async with world.factory() as db:
        texts = set((await db.scalars(select(Message.text))).all())
        conversations = await db.scalar(select(func.count()).select_from(Conversation))
    assert texts == {"pastedtext", "second customer"}
    assert conversations == 2  # nothing half-written for the refused one


async def test_a_profile_field_longer_than_its_column_is_cut_and_the_message_kept(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    body = update(311, "my name is long", user=4311)
    sender = body["message"]["from"]
    sender.update(username="u" * 250, first_name="Ф" * 400, last_name="Long")
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json=body, headers=SECRET)).status_code == 200
    async with world.factory() as db:
        stored = (
            await db.execute(
                select(Message.text, ContactIdentity.username, Contact.display_name)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
                .join(Contact, Contact.id == Conversation.contact_id)
            )
        ).one()
    assert stored.text == "my name is long"
    assert stored.username == "u" * 200
    assert stored.display_name == "Ф" * 300


# --- Item: every body answers 2xx or 4xx, never 5xx ------------------------------------------
# Bodies an acceptance run found answered 500 with a valid secret. An update that carries the
# provider's envelope (Telegram: an integer update_id; MAX: a string update_type) but a field
# that can never parse is acknowledged: a non-2xx makes the provider redeliver it, and Telegram
# holds back the bot's later updates meanwhile. A body that is no update at all is a 400.

MAX_CREDENTIALS = {"token": "max-token", "webhook_secret": "max-webhook_secret"}
MAX_SECRET = {"X-Max-Bot-Api-Secret": MAX_CREDENTIALS["webhook_secret"]}


def _recorded(provider: str, name: str) -> dict:
    return json.loads((PAYLOADS / provider / f"{name}.json").read_text())


def _tg_message(**fields) -> dict:
    body = _recorded("telegram", "text")
    body["message"].update(fields)
    return body


def _max_message(edit) -> dict:
    body = _recorded("max", "message_created_text")
    edit(body)
    return body


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.fixture
async def max_inbox_id(world) -> int:
    async with world.factory() as db, db.begin():
        inbox = Inbox(
            name="MAX bot",
            channel=ChannelKind.MAX,
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(MAX_CREDENTIALS),
        )
        db.add(inbox)
        await db.flush()
        return inbox.id


TELEGRAM_BODIES = {
    "text_is_a_number": (_tg_message(text=12345), 200),
    "date_1e20": (_tg_message(date=1e20), 200),
    "date_past_datetime": (_tg_message(date=10**20), 200),
    "photo_is_a_string": (_tg_message(photo="abc"), 200),
    "photo_sizes_are_numbers": (_tg_message(photo=[1, 2]), 200),
    "document_is_a_string": (_tg_message(document="abc"), 200),
    "sticker_is_a_list": (_tg_message(sticker=[1]), 200),
    "nested_100000_deep": (_nested(100_000), 400),
}
MAX_BODIES = {
    "message_null": (_max_message(lambda b: b.update(message=None)), 200),
    "bot_started_timestamp_1e25": ({**_recorded("max", "bot_started"), "timestamp": 1e25}, 200),
    "bot_started_timestamp_past_datetime": ({**_recorded("max", "bot_started"), "timestamp": 10**25}, 200),
    "attachments_is_a_string": (_max_message(lambda b: b["message"]["body"].update(attachments="abc")), 200),
    "sender_is_a_string": (_max_message(lambda b: b["message"].update(sender="x")), 200),
    "nested_50000_deep": (_nested(50_000), 400),
}


def _content(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


@pytest.mark.parametrize("case", TELEGRAM_BODIES, ids=str)
async def test_telegram_body_never_answers_5xx(world, live_api, case):
    body, expected = TELEGRAM_BODIES[case]
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with httpx.AsyncClient() as http:  # one keep-alive connection, as Telegram uses
        bad = await http.post(url, content=_content(body), headers=SECRET | JSON)
        next_update = await http.post(url, json=update(900, "after the bad one", user=4900), headers=SECRET)
    assert (bad.status_code, next_update.status_code) == (expected, 200)
    async with world.factory() as db:
        assert (await db.scalars(select(Message.text))).all() == ["after the bad one"]


@pytest.mark.parametrize("case", MAX_BODIES, ids=str)
async def test_max_body_never_answers_5xx(world, max_inbox_id, live_api, case):
    body, expected = MAX_BODIES[case]
    url = f"{live_api.url}/webhooks/max/{max_inbox_id}"
    good = _recorded("max", "message_created_text")
    async with httpx.AsyncClient() as http:
        bad = await http.post(url, content=_content(body), headers=MAX_SECRET | JSON)
        next_update = await http.post(url, json=good, headers=MAX_SECRET)
    assert (bad.status_code, next_update.status_code) == (expected, 200)
    async with world.factory() as db:
        assert (await db.scalars(select(Message.text))).all() == [good["message"]["body"]["text"]]


async def test_an_inbox_id_past_int64_is_not_found(world, live_api):
    async with httpx.AsyncClient() as http:
        past = await http.post(f"{live_api.url}/webhooks/telegram/99999999999999999999", json=update(1), headers=SECRET)
        negative = await http.post(f"{live_api.url}/webhooks/telegram/-1", json=update(1), headers=SECRET)
    assert (past.status_code, negative.status_code) == (404, 404)
    assert past.headers["content-type"] == "application/problem+json"


async def test_a_body_past_the_size_cap_is_refused_unread(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    huge = update(950, "x" * MAX_BODY_BYTES)

    async def chunks():  # no content-length: the cap holds while reading
        body = json.dumps(huge).encode()
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    async with httpx.AsyncClient() as http:
        declared = await http.post(url, json=huge, headers=SECRET)
        streamed = await http.post(url, content=chunks(), headers=SECRET | JSON)
        at_the_cap = await http.post(url, json=update(951, "x" * (MAX_BODY_BYTES - 1000)), headers=SECRET)
    assert (declared.status_code, streamed.status_code, at_the_cap.status_code) == (413, 413, 200)
