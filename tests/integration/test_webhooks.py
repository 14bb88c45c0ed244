"""Channel webhooks over HTTP: secrets, bad bodies, duplicates (provider retries)."""

import httpx
from sqlalchemy import func, select

from infra.models import Contact, ContactIdentity, Conversation, Message
from tests.integration.conftest import TELEGRAM_CREDENTIALS, refusing_text

SECRET = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_CREDENTIALS["webhook_secret"]}


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
        stored = (await db.execute(
            select(Message.text, ContactIdentity.username, Contact.display_name)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
            .join(Contact, Contact.id == Conversation.contact_id)
        )).one()
    assert stored.text == "my name is long"
    assert stored.username == "u" * 200
    assert stored.display_name == "Ф" * 300

