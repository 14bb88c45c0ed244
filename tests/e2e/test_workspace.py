"""The masters' workspace in a real browser, with the engine as it runs (outbox relay, workflows,
the fake Telegram):

- two operators in two browser contexts: a customer's message through the Telegram webhook
  appears live for its assignee with the sound, the badge and the tab title's count; left
  unopened past a short escalation time it moves to the second operator's screen live;
- the assignee opens the next one, inserts a canned reply with "/", sends it with Enter; the fake
  provider receives it once and the tick turns to "sent" live;
- the SSE connection dropped while messages arrive: after it comes back the list and the thread
  show each exactly once;
- screenshots of the inbox, thread, composer with a canned reply and contact panel, light and
  dark, desktop and phone, and axe on the inbox and the thread.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind, OperatorRole, OperatorStatus
from infra.models import CannedReply, Conversation, Inbox, Message, Operator
from infra.security import CredentialBox, hash_password
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import ARGS, DESKTOP, PASSWORD, PHONE
from tests.fakes.telegram import TOKEN as FAKE_TELEGRAM_TOKEN
from tests.integration.conftest import engine_stack, wait_until  # noqa: F401 - the engine fixture

SECRET = "s3cret-webhook_token"
assert "--autoplay-policy=no-user-gesture-required" in ARGS  # the chime plays without a click


async def _inbox(clean_db, name: str, escalation_minutes: float) -> int:
    async with clean_db() as db, db.begin():
        inbox = Inbox(
            name=name,
            channel=ChannelKind.TELEGRAM,
            bot_name=name,
            settings={"escalation_minutes": escalation_minutes},
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(
                {"token": FAKE_TELEGRAM_TOKEN, "webhook_secret": SECRET}
            ),
        )
        db.add(inbox)
        await db.flush()
        return inbox.id


async def _writes(base_url: str, inbox_id: int, user: int, text: str, update_id: int) -> None:
    body = {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(datetime.now(UTC).timestamp()),
            "chat": {"id": user, "type": "private", "first_name": f"Клиент {user}"},
            "from": {"id": user, "is_bot": False, "first_name": f"Клиент {user}", "language_code": "ru"},
            "text": text,
        },
    }
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{base_url}/webhooks/telegram/{inbox_id}", json=body, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
    assert answer.status_code == 200


class DroppingProxy:
    """A TCP proxy in front of the api whose connections the test can cut, as a network would:
    the browser sees its event stream end and reconnects (with Last-Event-ID) once it is back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.down = False
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    def drop(self) -> None:
        self.down = True
        for writer in list(self._writers):
            writer.close()

    async def stop(self) -> None:
        self.drop()
        self._server.close()


async def _open_as(browser, live_api, email: str, *, color_scheme="light", viewport=DESKTOP):
    # wait_for_function evaluates its condition, which the cabinet's CSP forbids pages to do
    context = await browser.new_context(color_scheme=color_scheme, viewport=viewport, locale="ru-RU", bypass_csp=True)
    page = await context.new_page()
    base_url = live_api if isinstance(live_api, str) else live_api.url
    await page.goto(f"{base_url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.login-card button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    await page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
    return context, page


async def test_two_operators_live_escalation_reply_once_and_ticks(
    browser,
    live_api,
    staff,
    clean_db,
    engine_stack,
    fake_telegram,
    screenshot,
):
    anna = staff[OperatorRole.OPERATOR]
    async with clean_db() as db, db.begin():
        dmitry = Operator(
            email="dmitry@example.com", display_name="Дмитрий", password_hash=hash_password(PASSWORD),
            role=OperatorRole.OPERATOR, branch_id=staff.branch_id, status=OperatorStatus.AWAY,
        )  # fmt: skip
        db.add(dmitry)
        await db.execute(
            update(Operator)
            .where(Operator.id == anna.id)
            .values(status=OperatorStatus.ONLINE, notify_when_focused=True)
        )
        db.add(CannedReply(shortcut="hello", text="Здравствуйте, {contact_name}! Заказ уже в пути."))
    fast = await _inbox(clean_db, "Склад", escalation_minutes=0.1)  # 6 s
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    contexts = []
    try:
        context, ann_page = await _open_as(browser, live_api, anna.email)
        contexts.append(context)
        context, dima_page = await _open_as(browser, live_api, "dmitry@example.com")
        contexts.append(context)

        # a customer writes; Anna is the only one online: it is hers, live, with sound, badge and title
        await _writes(live_api.url, fast, 5001, "Где мой заказ?", 1)
        rows = ann_page.locator("#rows li.row")
        await expect(rows).to_have_count(1, timeout=20_000)
        await expect(rows.first).to_contain_text("Где мой заказ?")
        await expect(ann_page).to_have_title("(1) Диалоги — Switchboard")
        await expect(ann_page.locator("#nav-unread")).to_contain_text("1")
        await ann_page.wait_for_function("document.getElementById('panes').dataset.lastSound")
        await screenshot(ann_page, "assigned-live")

        # Dmitry comes online; Anna leaves it unopened: after 6 s it moves to Dmitry's screen
        await dima_page.locator("#status-switch summary").click()
        await dima_page.locator("#status-switch").get_by_role("button", name="В сети", exact=True).click()
        await expect(dima_page.locator("#rows li.row")).to_have_count(1, timeout=30_000)
        await expect(dima_page.locator("#rows li.row").first).to_contain_text("Где мой заказ?")
        await expect(rows).to_have_count(0, timeout=10_000)
        await expect(ann_page).to_have_title("Диалоги — Switchboard")

        # the next customer: Anna has the lighter load; she opens it, "/" + shortcut, Enter, Enter
        await _writes(live_api.url, shop, 5002, "Здравствуйте, когда доставка?", 2)
        await expect(rows).to_have_count(1, timeout=20_000)
        await rows.first.locator("a").click()
        await ann_page.wait_for_url(re.compile(r"/conversations/\d+"))
        conversation_id = int(ann_page.url.rsplit("/", 1)[-1])
        await expect(ann_page).to_have_title("Диалоги — Switchboard")  # opening read it
        composer = ann_page.locator("#composer-text")
        await expect(ann_page.locator("#composer-route")).to_have_text("Ответ уйдёт в Telegram через бот «Магазин»")
        await composer.fill("/hel")
        await expect(ann_page.locator("#canned .canned-item")).to_have_count(1)
        await screenshot(ann_page, "composer-canned")
        await composer.press("Enter")  # picks the reply
        await expect(composer).to_have_value("Здравствуйте, Клиент 5002! Заказ уже в пути.")
        await composer.press("Enter")  # sends it
        mine = ann_page.locator("#messages .message[data-direction=out]")
        await expect(mine).to_have_count(1, timeout=20_000)
        await expect(mine.first).to_have_attribute("data-status", "sent", timeout=30_000)
        await expect(mine.first.locator(".ticks")).to_contain_text("✓")
        sent = [m for m in fake_telegram.sent_messages() if m.chat_id == "5002"]
        assert [m.text for m in sent] == ["Здравствуйте, Клиент 5002! Заказ уже в пути."]
        async with clean_db() as db:
            assert (await db.get(Conversation, conversation_id)).opened_at is not None
        await screenshot(ann_page, "replied")
        await assert_accessible(ann_page)
    finally:
        for context in contexts:
            await context.close()


async def _customer_message(clean_db, inbox_id: int, text: str, n: int) -> int:
    chat = str(zlib.crc32(b"reconnect"))
    event = InboundEvent(
        inbox_id=inbox_id, channel=ChannelKind.TELEGRAM, kind=InboundKind.MESSAGE, provider_user_id=chat,
        provider_chat_id=chat, provider_message_id=f"{chat}:{n}", provider_time=datetime.now(UTC), text=text,
        profile=ContactProfile(display_name="Ирина Смирнова"),
    )  # fmt: skip
    return (await ingest(clean_db, event)).conversation_id


async def test_a_dropped_stream_comes_back_with_each_message_once(browser, live_api, staff, clean_db):
    inbox_id = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    conversation_id = await _customer_message(clean_db, inbox_id, "первое", 0)
    async with clean_db() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(branch_id=staff.branch_id, assignee_id=staff[OperatorRole.OPERATOR].id)
        )
    proxy = DroppingProxy(live_api.port)
    base_url = await proxy.start()
    context, page = await _open_as(browser, base_url, staff[OperatorRole.OPERATOR].email)
    try:
        await page.goto(f"{base_url}/conversations/{conversation_id}")
        await page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
        await _customer_message(clean_db, inbox_id, "до обрыва", 1)
        await expect(page.locator("#messages .message")).to_have_count(2, timeout=10_000)
        proxy.drop()
        await page.wait_for_function("window.switchboardStream.readyState !== 1")  # the stream is down
        for n in range(2, 6):
            await _customer_message(clean_db, inbox_id, f"пока нет связи {n}", n)
        proxy.down = False
        await expect(page.locator("#messages .message")).to_have_count(6, timeout=20_000)
        await _customer_message(clean_db, inbox_id, "после", 6)
        await expect(page.locator("#messages .message")).to_have_count(7, timeout=10_000)
        async with clean_db() as db:
            stored = (await db.scalars(select(Message.id).order_by(Message.id))).all()
        shown = [
            int(i) for i in await page.locator("#messages .message").evaluate_all("els => els.map(e => e.dataset.id)")
        ]
        assert shown == list(stored)  # each once, in order
        assert await page.locator(f"#row-{conversation_id}").count() == 1
        await expect(page.locator(f"#row-{conversation_id} .row-preview")).to_contain_text("после")
    finally:
        await context.close()
        await proxy.stop()


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "light-phone", "dark-phone"],
)
async def test_inbox_thread_and_contact_panel_screens(sign_in, conversations, clean_db, screenshot, scheme, viewport):
    page = await sign_in(OperatorRole.OPERATOR, color_scheme=scheme, viewport=viewport)
    await assert_accessible(page)
    await screenshot(page, "inbox")
    await page.locator("#rows li.row a").first.click()
    await page.wait_for_url(re.compile(r"/conversations/\d+"))
    await expect(page.locator("#messages .message")).to_have_count(1)
    await expect(page.locator("#composer-text")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "thread")
    if viewport == PHONE:
        await expect(page.locator(".pane-list")).to_be_hidden()
        await page.locator("[data-aside]").click()
        await expect(page.locator("#contact")).to_be_visible()
    await expect(page.locator("#contact")).to_contain_text("Ирина Смирнова")
    await screenshot(page, "contact")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


async def test_keyboard_moves_through_the_list_and_opens_the_help(sign_in, conversations, staff, clean_db):
    async with clean_db() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id.in_(conversations[:3]))
            .values(assignee_id=staff[OperatorRole.OPERATOR].id)
        )
    page = await sign_in(OperatorRole.OPERATOR)
    await page.keyboard.press("j")
    await page.wait_for_url(re.compile(rf"/conversations/{conversations[0]}"))
    await expect(page.locator(f"#row-{conversations[0]} a")).to_have_attribute("aria-current", "true")
    await page.keyboard.press("j")
    await page.wait_for_url(re.compile(rf"/conversations/{conversations[1]}"))
    await expect(page.locator(f"#row-{conversations[1]} a")).to_have_attribute("aria-current", "true")
    await page.keyboard.press("k")
    await page.wait_for_url(re.compile(rf"/conversations/{conversations[0]}"))
    await page.keyboard.press("n")
    await expect(page.locator("#composer-text")).to_be_focused()
    await expect(page.locator("#note-mode")).to_be_checked()
    await page.keyboard.press("j")  # typing in the composer: not a shortcut
    await expect(page.locator("#composer-text")).to_have_value("j")
    await page.keyboard.press("Escape")
    await page.evaluate("document.activeElement.blur()")
    await page.keyboard.press("Shift+?")
    await expect(page.locator("#shortcuts")).to_be_visible()
    await assert_accessible(page)
