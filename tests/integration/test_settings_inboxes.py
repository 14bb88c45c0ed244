"""Settings -> Inboxes over real HTTP against the fake providers: a bot token is checked with
getMe / GET /me (a bad one is refused with the provider's 401) and the bot named before anything
is kept; tokens never reach a page; long polling without an https PUBLIC_URL, a webhook with one;
settings, the test message, token replacement, switching off."""

import re

import httpx
import pytest
from sqlalchemy import select

from domain.enums import ChannelKind
from infra.models import AuditEvent, Inbox
from infra.security import CredentialBox
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.faults import Fault
from tests.fakes.max import TOKEN as MAX_TOKEN
from tests.fakes.telegram import TOKEN as TELEGRAM_TOKEN
from tests.integration.settings_support import https_api, sign_in  # noqa: F401

BOX = CredentialBox(TEST_CREDENTIALS_KEY)


def _sealed(html: str) -> str:
    return re.search(r'name="sealed" value="([^"]+)"', html).group(1)


async def _connect(client, channel: str, token: str, name: str = "Магазин") -> httpx.Response:
    checked = await client.post("/settings/inboxes/connect/check", {"channel": channel, "name": name, "token": token})
    assert checked.status_code == 200, checked.text
    return await client.post("/settings/inboxes/connect", {"sealed": _sealed(checked.text)})


async def _inbox(clean_db, name: str = "Магазин") -> Inbox:
    async with clean_db() as db:
        return await db.scalar(select(Inbox).where(Inbox.name == name))


@pytest.mark.parametrize(
    ("channel", "token", "bot"),
    [("telegram", TELEGRAM_TOKEN, "@switchboard_test_bot"), ("max", MAX_TOKEN, "@switchboard_bot")],
)
async def test_a_bot_is_checked_named_and_connected_by_long_polling(
    live_api, admin, clean_db, fake_telegram, fake_max, channel, token, bot
):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    refused = await client.post(
        "/settings/inboxes/connect/check", {"channel": channel, "name": "Магазин", "token": "123:not-a-token"}
    )
    assert refused.status_code == 422 and "Провайдер не знает этот токен" in refused.text
    assert "not-a-token" not in refused.text
    checked = await client.post(
        "/settings/inboxes/connect/check", {"channel": channel, "name": "Магазин", "token": token}
    )
    assert checked.status_code == 200 and 'id="bot-name">Switchboard<' in checked.text and bot in checked.text
    assert token not in checked.text and checked.headers["cache-control"] == "no-store"
    assert await _inbox(clean_db) is None  # nothing kept before the admin confirms

    answer = await client.post("/settings/inboxes/connect", {"sealed": _sealed(checked.text)})
    inbox = await _inbox(clean_db)
    assert (answer.status_code, answer.headers["location"]) == (303, f"/settings/inboxes/{inbox.id}")
    assert inbox.channel == ChannelKind(channel) and inbox.bot_username == bot[1:] and inbox.webhook_url is None
    assert BOX.open(inbox.credentials_encrypted)["token"] == token
    page = await client.get(f"/settings/inboxes/{inbox.id}")
    assert "Источник «Магазин» подключён." in page.text and "Длинный опрос" in page.text
    assert token not in page.text and f"••••{token[-4:]}" in page.text
    async with clean_db() as db:
        created = await db.scalar(select(AuditEvent).where(AuditEvent.action == "inbox.created"))
    assert created.details["after"]["bot_username"] == bot[1:] and token not in str(created.details)
    await client.http.aclose()


async def test_a_tampered_or_stale_check_is_refused(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post("/settings/inboxes/connect", {"sealed": "not-sealed-by-us"})
    assert answer.status_code == 422 and "Проверка устарела" in answer.text
    async with clean_db() as db:
        assert await db.scalar(select(Inbox.id).where(Inbox.channel == ChannelKind.TELEGRAM)) is None
    await client.http.aclose()


async def test_with_an_https_public_url_the_bot_gets_a_webhook_with_a_secret(https_api, admin, clean_db, fake_telegram):
    client = await sign_in(https_api.url, admin["email"], admin["password"])
    await _connect(client, "telegram", TELEGRAM_TOKEN)
    inbox = await _inbox(clean_db)
    hook = fake_telegram.webhook
    assert hook["url"] == f"https://switchboard.test/webhooks/telegram/{inbox.id}"
    assert hook["secret_token"] == BOX.open(inbox.credentials_encrypted)["webhook_secret"]
    page = await client.get(f"/settings/inboxes/{inbox.id}")
    assert hook["url"] in page.text and hook["secret_token"] not in page.text

    fake_telegram.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway")
    answer = await client.post(f"/settings/inboxes/{inbox.id}/check")
    assert answer.status_code == 303
    page = await client.get(f"/settings/inboxes/{inbox.id}")
    assert "Wrong response from the webhook: 502 Bad Gateway" in page.text
    # someone deleted the webhook at Telegram: re-subscribe puts it back with the same secret
    await httpx.AsyncClient().post(f"{fake_telegram.base_url}/bot{TELEGRAM_TOKEN}/deleteWebhook")
    assert fake_telegram.webhook is None
    assert (await client.post(f"/settings/inboxes/{inbox.id}/reconnect")).status_code == 303
    assert fake_telegram.webhook["secret_token"] == hook["secret_token"]

    # the page's rotation: the provider has the new secret, the page says until when the old one works
    assert (await client.post(f"/settings/inboxes/{inbox.id}/rotate-secret")).status_code == 303
    rotated = fake_telegram.webhook["secret_token"]
    assert rotated != hook["secret_token"]
    page = await client.get(f"/settings/inboxes/{inbox.id}")
    assert "Действует новый секрет вебхука; старый принимается до" in page.text and rotated not in page.text
    hook = fake_telegram.webhook

    # switched off: the webhook goes, the route refuses; switched on: it comes back
    await client.post(f"/settings/inboxes/{inbox.id}/deactivate")
    assert fake_telegram.webhook is None
    update = fake_telegram.inject_message(777, "hi")
    refused = await httpx.AsyncClient().post(
        f"{https_api.url}/webhooks/telegram/{inbox.id}",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]},
    )
    assert refused.status_code == 404
    await client.post(f"/settings/inboxes/{inbox.id}/activate")
    assert fake_telegram.webhook["url"] == hook["url"]
    await client.http.aclose()


async def test_settings_are_saved_validated_and_audited(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        widget = await db.scalar(select(Inbox).where(Inbox.channel == ChannelKind.WIDGET))
    form = {
        "name": "Сайт",
        "default_branch_id": "",
        "escalation_minutes": "6",
        "offline_text": "Мы ответим утром.",
        "auto_reply": "",
        "rating_mode": "nps",
        "attachment_max_mb": "5",
        "attachment_max_count": "3",
        "allowed_domains": "shop.example.com\nhttps://Example.com/path\n*.example.org",
        "sse": "",
    }
    assert (await client.post(f"/settings/inboxes/{widget.id}", form)).status_code == 303
    async with clean_db() as db:
        saved = await db.get(Inbox, widget.id)
        change = await db.scalar(select(AuditEvent).where(AuditEvent.action == "inbox.settings"))
    assert saved.name == "Сайт"
    assert saved.settings["allowed_domains"] == ["*.example.org", "example.com", "shop.example.com"]
    assert saved.settings["features"] == {"sse": False} and saved.settings["attachment_max_bytes"] == 5 * 2**20
    assert (saved.settings["escalation_minutes"], saved.settings["rating_mode"]) == (6, "nps")
    assert change.details["before"]["offline_text"].startswith("We are offline")
    assert change.details["after"]["offline_text"] == "Мы ответим утром."
    page = await client.get(f"/settings/inboxes/{widget.id}")
    assert f"/static/widget/loader.js&#34; data-inbox=&#34;{widget.id}&#34;" in page.text  # the code to paste

    bad = {**form, "escalation_minutes": "0", "rating_mode": "emoji", "allowed_domains": "not a site!"}
    answer = await client.post(f"/settings/inboxes/{widget.id}", bad)
    assert answer.status_code == 422
    for message in ("Не меньше 0.5.", "Выберите один из вариантов.", "— не адрес сайта"):
        assert message in answer.text
    await client.http.aclose()


async def test_a_test_message_goes_to_the_named_chat_through_the_inboxs_bot(live_api, admin, clean_db, fake_telegram):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    await _connect(client, "telegram", TELEGRAM_TOKEN)
    inbox = await _inbox(clean_db)
    answer = await client.post(f"/settings/inboxes/{inbox.id}/test-message", {"chat_id": "4242", "text": "Проверка"})
    assert answer.status_code == 303
    assert [m.text for m in fake_telegram.sent_messages(4242)] == ["Проверка"]
    fake_telegram.set_chat_fault(5151, Fault.BLOCKED)
    answer = await client.post(f"/settings/inboxes/{inbox.id}/test-message", {"chat_id": "5151", "text": "Проверка"})
    assert answer.status_code == 422 and "bot was blocked by the user" in answer.text
    answer = await client.post(f"/settings/inboxes/{inbox.id}/test-message", {"chat_id": "@me", "text": "x"})
    assert answer.status_code == 422 and "Значение в неверном формате." in answer.text
    await client.http.aclose()


async def test_a_token_is_replaced_only_by_one_of_the_same_bot(live_api, admin, clean_db, fake_telegram):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    await _connect(client, "telegram", TELEGRAM_TOKEN)
    inbox = await _inbox(clean_db)
    fake_telegram.add_bot(
        "987654:OtherBotToken_abcdefghijklmnopqrstuvwx", bot_id=987654, first_name="Other", username="other_bot"
    )
    answer = await client.post(
        f"/settings/inboxes/{inbox.id}/token", {"token": "987654:OtherBotToken_abcdefghijklmnopqrstuvwx"}
    )
    assert answer.status_code == 422 and "@other_bot" in answer.text and "OtherBotToken" not in answer.text
    assert BOX.open((await _inbox(clean_db)).credentials_encrypted)["token"] == TELEGRAM_TOKEN
    assert (await client.post(f"/settings/inboxes/{inbox.id}/token", {"token": TELEGRAM_TOKEN})).status_code == 303
    async with clean_db() as db:
        assert await db.scalar(select(AuditEvent.details).where(AuditEvent.action == "inbox.token_replaced")) == {
            "inbox_id": inbox.id
        }
    await client.http.aclose()
