"""The website chat in a real browser: a demo shop page on one origin (under a strict CSP whose
violation reports this test collects) embeds the widget served by the api on another. The
visitor writes and pastes a screenshot, the operator's reply appears live, ticks go to read, the
rating form comes after resolve; the same with polling; screenshots of each state."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.async_api import expect
from sqlalchemy import select, update

from domain.enums import DeliveryStatus, OperatorRole, OperatorStatus
from infra.models import Attachment, Conversation, Message, Operator
from setup.devstack import free_port
from tests.e2e.conftest import DESKTOP, PHONE
from tests.integration.api_support import client, issue_token
from tests.integration.conftest import engine_stack, wait_until  # noqa: F401 - the engine as a fixture
from tests.integration.widget_support import Visitor, widget_inbox


def _png(width: int = 160, height: int = 90) -> bytes:
    """A small gradient PNG, as a pasted screenshot."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\0" + b"".join(bytes((x * 255 // width, y * 255 // height, 200)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()


class DemoSite:
    """A shop's page on its own origin (localhost, while the widget is on 127.0.0.1), with a
    strict CSP: scripts and frames only from the widget's origin, nothing inline."""

    def __init__(self, widget_origin: str) -> None:
        self.widget = widget_origin
        self.reports: list[dict] = []
        self.port = free_port()
        self.url = f"http://localhost:{self.port}"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = dict(part.split("=", 1) for part in self.path.partition("?")[2].split("&") if "=" in part)
                body = (
                    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Demo shop</title></head>"
                    "<body><h1>Demo shop</h1><p>Everything for your garden.</p>"
                    f"<script src='{site.widget}/static/widget/loader.js' data-inbox='{query.get('inbox')}'"
                    f" data-load='click' data-locale='{query.get('locale', 'en')}' async></script>"
                    "</body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-security-policy", site.policy())
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                site.reports.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def policy(self) -> str:
        """The lines the README tells a site owner to add, in an otherwise closed policy."""
        return (
            f"default-src 'none'; script-src {self.widget}; frame-src {self.widget}; report-uri {self.url}/csp-report"
        )

    def __enter__(self) -> DemoSite:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()


async def _open_widget(browser, site: DemoSite, inbox_id: int, *, color_scheme="light", viewport=DESKTOP, locale="en"):
    context = await browser.new_context(color_scheme=color_scheme, viewport=viewport, locale=locale)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(f"{site.url}/demo?inbox={inbox_id}&locale={locale}")
    return context, page, problems


def _frame(page):
    return page.frame_locator("iframe[title]")


async def _reply(api_url: str, secret: str, conversation_id: int, text: str, key: str) -> int:
    async with client(api_url, secret) as api:
        answer = await api.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}, headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


async def _online_operator(factory) -> None:
    async with factory() as db, db.begin():
        await db.execute(update(Operator).values(status=OperatorStatus.ONLINE))


@pytest.mark.usefixtures("engine_stack")
async def test_a_visitor_chats_live_from_a_page_under_a_strict_csp(browser, live_api, staff, clean_db, screenshot):
    await _online_operator(clean_db)
    inbox_id = await widget_inbox(clean_db, rating_mode="stars", allowed_domains=["localhost"])
    secret = await issue_token(clean_db)
    with DemoSite(live_api.url) as site:
        context, page, problems = await _open_widget(browser, site, inbox_id)
        launcher = page.get_by_role("button", name="Chat")
        await launcher.wait_for()
        await screenshot(page, "closed-light")
        await launcher.click()
        frame = _frame(page)
        box = frame.get_by_role("textbox", name="Message")
        await box.fill("Do you deliver **on Sundays**? <script>alert(1)</script>")
        await box.press("Enter")
        async with clean_db() as db:
            await wait_until(lambda: _first_message(clean_db))
            conversation_id = await db.scalar(select(Conversation.id))
        # a pasted screenshot (Ctrl+V) becomes a message with the image
        await frame.locator("#sb-text").evaluate(
            """(el, bytes) => {
                const data = new DataTransfer();
                data.items.add(new File([new Uint8Array(bytes)], "screenshot.png", {type: "image/png"}));
                el.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
            }""",
            list(PNG),
        )
        await wait_until(lambda: _attachment(clean_db))
        await frame.locator(".msg.mine img").wait_for()

        reply_id = await _reply(live_api.url, secret, conversation_id, "Yes, **every day** until 8 pm", "e2e-1")
        bold = frame.locator(".msg:not(.mine) b", has_text="every day")
        await bold.wait_for()
        # the visitor's own text shows as they wrote it, never as markup
        assert await frame.locator(".msg.mine div").first.inner_text() == (
            "Do you deliver **on Sundays**? <script>alert(1)</script>"
        )
        await screenshot(page, "open-light")
        await wait_until(lambda: _status_is(clean_db, reply_id, DeliveryStatus.READ))

        async with client(live_api.url, secret) as api:
            assert (await api.post(f"/api/v1/conversations/{conversation_id}/resolve")).status_code == 202
        stars = frame.get_by_role("radio", name="5")
        await stars.wait_for(timeout=30_000)
        await screenshot(page, "rating-light")
        await stars.click()
        await frame.get_by_role("button", name="Send rating").click()
        await frame.get_by_text("Thank you for your rating!").wait_for()
        async with clean_db() as db:
            assert await db.scalar(select(Conversation.rating).where(Conversation.id == conversation_id)) == 5
        await context.close()

        # dark, and a phone: the chat takes the whole screen
        for variant, scheme, viewport in (("open-dark", "dark", DESKTOP), ("open-phone", "light", PHONE)):
            context, page, more = await _open_widget(browser, site, inbox_id, color_scheme=scheme, viewport=viewport)
            await page.get_by_role("button", name="Chat").click()
            await _frame(page).get_by_role("textbox", name="Message").wait_for()
            if viewport is PHONE:
                assert await page.locator("iframe[title]").evaluate("f => f.getBoundingClientRect().width") == 390
            await screenshot(page, variant)
            problems += more
            await context.close()
    assert problems == [] and site.reports == [], (problems, site.reports)


async def test_with_live_updates_off_the_widget_polls_solves_a_challenge_and_shows_offline(
    browser, live_api, staff, clean_db, screenshot
):
    inbox_id = await widget_inbox(
        clean_db,
        features={"sse": False},
        allowed_domains=["localhost"],
        offline_text="We are closed now: we answer tomorrow from 9 am.",
        expected_reply_minutes=120,
        widget_texts={"ru": {"title": "Магазин «Ромашка»", "placeholder": "Ваш вопрос"}, "en": {"title": "Shop"}},
    )
    secret = await issue_token(clean_db)
    # this address has used its free sessions: the widget must solve a proof-of-work challenge
    for _ in range(3):
        assert (await Visitor(live_api.url, inbox_id, origin="http://localhost").start()).status_code == 201
    assert (await Visitor(live_api.url, inbox_id, origin="http://localhost").start()).status_code == 403
    with DemoSite(live_api.url) as site:
        context, page, problems = await _open_widget(browser, site, inbox_id, color_scheme="dark", locale="ru")
        await page.get_by_role("button", name="Чат").click()
        frame = _frame(page)
        await frame.get_by_text("We are closed now").wait_for()
        # the inbox's own words in the chat's language, and when to expect an answer
        await frame.get_by_text("Ожидаемое время ответа: 2 часа").wait_for()
        assert await frame.get_by_role("heading").inner_text() == "Магазин «Ромашка»"
        box = frame.get_by_role("textbox", name="Сообщение")
        assert await box.get_attribute("placeholder") == "Ваш вопрос"
        await box.fill("Здравствуйте, перезвоните мне")
        # nobody answers now: the form asks for a way back
        await frame.get_by_text("Оставьте e-mail или телефон").wait_for()
        await frame.get_by_label("Ваше имя").fill("Анна")
        await frame.get_by_label("Телефон").fill("+7 912 000-00-00")
        await screenshot(page, "offline-dark-ru")
        await box.press("Enter")
        await wait_until(lambda: _first_message(clean_db))
        await frame.get_by_role("group").wait_for(state="hidden")
        async with clean_db() as db:
            conversation_id = await db.scalar(select(Conversation.id))
        for n in range(2):
            await _reply(live_api.url, secret, conversation_id, f"Ответ {n}", f"poll-{n}")
        await frame.get_by_text("Ответ 1").wait_for()
        assert await frame.locator(".msg:not(.mine)", has_text="Ответ").count() == 2
        await context.close()
    assert problems == [] and site.reports == [], (problems, site.reports)


@pytest.mark.usefixtures("engine_stack")
async def test_the_operator_s_typing_reaches_the_widget_and_the_visitor_s_ticks_the_cabinet(
    browser, live_api, staff, sign_in, clean_db
):
    await _online_operator(clean_db)
    inbox_id = await widget_inbox(clean_db, allowed_domains=["localhost"])
    secret = await issue_token(clean_db)
    with DemoSite(live_api.url) as site:
        context, page, problems = await _open_widget(browser, site, inbox_id)
        await page.get_by_role("button", name="Chat").click()
        frame = _frame(page)
        box = frame.get_by_role("textbox", name="Message")
        await box.fill("Is my order on its way?")
        await box.press("Enter")
        await wait_until(lambda: _first_message(clean_db))
        async with clean_db() as db, db.begin():
            conversation_id = await db.scalar(select(Conversation.id))
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(assignee_id=staff[OperatorRole.OPERATOR].id)
            )
        cabinet = await sign_in(OperatorRole.OPERATOR)
        await cabinet.goto(f"{live_api.url}/conversations/{conversation_id}")
        # polled from outside: wait_for_function evaluates its condition in the page, which the
        # cabinet's CSP refuses once the first check finds the stream still connecting
        stream_open = "window.switchboardStream && window.switchboardStream.readyState === 1"
        await wait_until(lambda: cabinet.evaluate(stream_open))
        await cabinet.locator("#composer-text").press_sequentially("Let me check", delay=20)
        await frame.get_by_text("Operator is typing…").wait_for()

        reply_id = await _reply(live_api.url, secret, conversation_id, "It is on its way", "e2e-ticks")
        await frame.get_by_text("It is on its way").wait_for()  # the chat is open: the visitor sees it
        await wait_until(lambda: _status_is(clean_db, reply_id, DeliveryStatus.READ))
        await expect(cabinet.locator(f"#message-{reply_id} .seen[data-seen='read']")).to_be_visible()
        await context.close()
    assert problems == [] and site.reports == [], (problems, site.reports)


async def _first_message(factory) -> bool:
    async with factory() as db:
        return await db.scalar(select(Message.id).limit(1)) is not None


async def _attachment(factory) -> bool:
    async with factory() as db:
        return await db.scalar(select(Attachment.mime_type)) == "image/png"


async def _status_is(factory, message_id: int, status: DeliveryStatus) -> bool:
    async with factory() as db:
        return (await db.get(Message, message_id)).delivery_status == status


async def test_a_reconnect_while_the_operator_replies_shows_each_reply_exactly_once(browser, live_api, staff, clean_db):
    await _online_operator(clean_db)
    inbox_id = await widget_inbox(clean_db, allowed_domains=["localhost"])
    secret = await issue_token(clean_db)
    with DemoSite(live_api.url) as site:
        context, page, problems = await _open_widget(browser, site, inbox_id)
        await page.get_by_role("button", name="Chat").click()
        frame = _frame(page)
        box = frame.get_by_role("textbox", name="Message")
        await box.fill("hello")
        await box.press("Enter")
        await wait_until(lambda: _first_message(clean_db))
        async with clean_db() as db:
            conversation_id = await db.scalar(select(Conversation.id))
        await _reply(live_api.url, secret, conversation_id, "first answer", "rc-0")
        await frame.get_by_text("first answer").wait_for()
        # the network goes away (a train tunnel, a phone's background tab) while the operator goes on
        await context.set_offline(True)
        for n in range(1, 4):
            await _reply(live_api.url, secret, conversation_id, f"answer {n}", f"rc-{n}")
        await context.set_offline(False)  # "online": the chat reconnects from its last event id
        await frame.get_by_text("answer 3").wait_for()
        await _reply(live_api.url, secret, conversation_id, "answer 4", "rc-4")
        await frame.get_by_text("answer 4").wait_for()
        shown = await frame.locator(".msg:not(.mine) div").all_inner_texts()
        assert shown == ["first answer", "answer 1", "answer 2", "answer 3", "answer 4"]
        await context.close()
    assert problems == [] and site.reports == [], (problems, site.reports)
