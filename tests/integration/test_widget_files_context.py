"""A visitor's files (checked by their bytes, within the inbox's limits, private to them), what
the operator learns of the visitor (page, first visit, device), and formatting that is safe both
ways (the visitor's text is never markup; an operator's links cannot run script)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from domain.enums import MessageFormat, OperatorRole
from infra.models import Attachment, Contact, Conversation, Message
from services.uploads import sniff
from services.widget_context import describe_agent
from tests.integration.api_support import assert_problem, client, issue_token
from tests.integration.settings_support import add_staff, sign_in
from tests.integration.widget_support import Visitor, new_client_id, widget_inbox

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 64
PDF = b"%PDF-1.7\n" + b"\0" * 64


async def _upload(visitor: Visitor, *files: tuple[str, bytes], client_id: str | None = None):
    return await visitor.call(
        "POST",
        "/uploads",
        data={"client_id": client_id or new_client_id()},
        files=[("files", (name, content, "image/png")) for name, content in files],
    )


def test_a_file_is_what_its_bytes_say():
    assert sniff(PNG)[0] == "image/png" and sniff(JPEG)[0] == "image/jpeg" and sniff(PDF)[0] == "application/pdf"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ")[0] == "image/webp"
    for disguised in (b"<svg onload=alert(1)>", b"MZ\x90\0", b"<html><script>", b"PK\x03\x04", b""):
        assert sniff(disguised) is None


async def test_files_are_checked_stored_once_and_served_only_to_their_visitor(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db, attachment_max_bytes=1024, attachment_max_count=2)
    ann, eve = Visitor(live_api.url, inbox_id), Visitor(live_api.url, inbox_id)
    await ann.start()
    await eve.start()
    # a script named like a picture, sent as image/png, is refused for what it is
    assert_problem(await _upload(ann, ("cat.png", b"<script>alert(1)</script>")), 415)
    assert_problem(await _upload(ann, ("big.png", PNG + b"\0" * 2000)), 413)
    assert_problem(await _upload(ann, ("a.png", PNG), ("b.png", PNG), ("c.png", PNG)), 413)
    assert_problem(await ann.call("POST", "/uploads", data={"client_id": "bad id"}, files=[("files", ("a", PNG))]), 422)
    async with clean_db() as db:
        assert await db.scalar(select(Message.id)) is None  # nothing half-written

    client_id = new_client_id()
    first = await _upload(ann, ("screenshot.png", PNG), ("invoice.pdf", PDF), client_id=client_id)
    again = await _upload(ann, ("screenshot.png", PNG), ("invoice.pdf", PDF), client_id=client_id)  # a retry
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["message_id"] == again.json()["message_id"]
    async with clean_db() as db:
        stored = (await db.scalars(select(Attachment).order_by(Attachment.id))).all()
    assert [(a.mime_type, a.file_name, a.size) for a in stored] == [
        ("image/png", "screenshot.png", len(PNG)),
        ("application/pdf", "invoice.pdf", len(PDF)),
    ]
    shown = (await ann.chat())["messages"][0]["attachments"]
    assert [a["id"] for a in shown] == [a.id for a in stored] and all(a["ready"] for a in shown)
    picture = await ann.call("GET", f"/files/{stored[0].id}")
    assert picture.status_code == 200 and picture.content == PNG
    assert picture.headers["content-type"] == "image/png" and picture.headers["x-content-type-options"] == "nosniff"
    document = await ann.call("GET", f"/files/{stored[1].id}")
    assert document.headers["content-disposition"] == "attachment"
    # another visitor, a guessed id, no token: nothing
    await eve.say("hello")
    for attachment_id in (stored[0].id, stored[0].id + 100):
        assert_problem(await eve.call("GET", f"/files/{attachment_id}"), 404)
    assert_problem(await Visitor(live_api.url, inbox_id).call("GET", f"/files/{stored[0].id}"), 401)


async def test_the_visitors_context_is_stored_with_the_conversation(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    visitor = Visitor(
        live_api.url,
        inbox_id,
        headers={
            "user-agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
        },
    )
    await visitor.start()
    landing = {
        "url": "https://shop.example.com/?utm_source=ads&utm_campaign=winter",
        "title": "Shop",
        "referrer": "https://search.example.net/?q=shop",
        "language": "ru-RU",
        "timezone": "Europe/Moscow",
        "screen": "412x915",
    }
    # before the first message there is no conversation to keep it in: nothing is stored
    assert (await visitor.call("POST", "/context", json=landing)).status_code == 204
    await visitor.say("hi")
    await visitor.call("POST", "/context", json=landing)
    await visitor.call("POST", "/context", json={"url": "https://shop.example.com/cart", "title": "Cart"})
    await visitor.call("POST", "/context", json={"url": "javascript:alert(1)", "title": "x", "name": "Ann"})
    async with clean_db() as db:
        context = await db.scalar(select(Conversation.visitor_context))
    assert context["page"] == {"url": "https://shop.example.com/cart", "title": "Cart"}
    assert context["first"] == {
        "landing_url": landing["url"],
        "referrer": landing["referrer"],
        "utm": {"source": "ads", "campaign": "winter"},
    }
    assert (context["browser"], context["os"], context["device"]) == ("Chrome 131", "Android 14", "phone")
    assert (context["language"], context["timezone"], context["screen"]) == ("ru-RU", "Europe/Moscow", "412x915")
    assert context["contact"] == {"name": "Ann"} and context["updated_at"]
    # what the site tells of its visitor (Switchboard.setUser) fills the contact's empty fields
    await visitor.call("POST", "/context", json={"name": "Ann B", "email": "ann@example.com", "phone": "+7 999 1"})
    async with clean_db() as db:
        contact = await db.scalar(select(Contact))
    assert (contact.display_name, contact.email, contact.phone) == ("Ann", "ann@example.com", "+7 999 1")
    for bad in ({"screen": "1;DROP"}, {"email": "not an address"}, {"phone": "call me"}):
        assert_problem(await visitor.call("POST", "/context", json=bad), 422)
    # the operator reads it in the thread's contact panel
    await add_staff(clean_db, OperatorRole.ADMIN, "watcher@example.com", "Watcher")
    staff = await sign_in(live_api.url, "watcher@example.com")
    async with clean_db() as db:
        conversation_id = await db.scalar(select(Conversation.id))
    thread = await staff.get(f"/conversations/{conversation_id}")
    await staff.http.aclose()
    assert thread.status_code == 200
    panel = thread.text[thread.text.index('id="visitor-context"') :]
    assert 'href="https://shop.example.com/cart"' in panel and ">Cart</a>" in panel
    assert "Chrome 131" in panel and "source=ads" in panel and "search.example.net" in panel


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.1 Mobile/15E148 Safari/604.1",
            {"browser": "Safari 17", "os": "iOS 17", "device": "phone"},
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
            {"browser": "Firefox 132", "os": "Windows 10.0", "device": "desktop"},
        ),
        ("", {}),
    ],
)
def test_the_device_is_read_from_the_user_agent(agent, expected):
    assert describe_agent(agent) == expected


XSS = [
    '<script>alert("x")</script>',
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '**<a href="javascript:alert(1)">bold</a>**',
    '"><svg/onload=alert(1)>',
]


async def test_formatting_is_safe_both_ways(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    secret = await issue_token(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    for payload in XSS:
        await visitor.say(payload)
    chat = await visitor.chat()
    async with client(live_api.url, secret) as api:
        for n, payload in enumerate(XSS):
            answer = await api.post(
                f"/api/v1/conversations/{chat['conversation']['id']}/messages",
                json={"text": payload},
                headers={"Idempotency-Key": f"x{n}"},
            )
            assert answer.status_code == 201
        # visitor -> staff: stored as they wrote it, plain text, for the cabinet to escape
        listed = (await api.get(f"/api/v1/conversations/{chat['conversation']['id']}/messages")).json()["items"]
    theirs = [m for m in listed if m["direction"] == "in"]
    assert [(m["text"], m["format"]) for m in theirs] == [(p, MessageFormat.PLAIN) for p in XSS]
    # both directions as the widget shows them: no tag but our own formatting, no script URL
    shown = (await visitor.chat())["messages"]
    assert len(shown) == 2 * len(XSS)
    for message in shown:
        bare = re.sub(r'</?(?:b|i|code)>|<a href="https?://[^"<>]*">|</a>', "", message["html"])
        assert "<" not in bare and ">" not in bare.replace("&gt;", ""), message["html"]
    mine = [m["html"] for m in shown if m["mine"]]
    assert mine[0] == '&lt;script&gt;alert("x")&lt;/script&gt;'
    ours = [m["html"] for m in shown if not m["mine"]]
    assert ours[2] == "[click](javascript:alert(1))"
    assert ours[3] == '<b>&lt;a href="javascript:alert(1)"&gt;bold&lt;/a&gt;</b>'
