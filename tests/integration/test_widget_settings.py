"""The website chat on its inbox's settings page: the code to paste, its options, and the CSP
lines the site needs; what the code names exists and starts the chat (tests/e2e/test_widget.py)."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from domain.enums import ChannelKind
from infra.models import Inbox
from tests.integration.settings_support import sign_in
from tests.integration.widget_support import Visitor


def _snippet(page: str) -> str:
    return html.unescape(re.search(r'<pre class="snippet" id="snippet-code"[^>]*>(.*?)</pre>', page, re.S).group(1))


async def test_the_inbox_page_gives_the_code_with_its_options(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        widget = await db.scalar(select(Inbox).where(Inbox.channel == ChannelKind.WIDGET))
    public = live_api._server.config.app.state.settings.public_url.rstrip("/")
    page = await client.get(f"/settings/inboxes/{widget.id}")
    assert _snippet(page.text) == (
        f'<script src="{public}/static/widget/loader.js" data-inbox="{widget.id}" data-load="delay" data-delay="3"'
        ' data-color="#2563eb" async></script>'
    )
    assert f"script-src {public}; frame-src {public}" in page.text
    chosen = await client.get(
        f"/settings/inboxes/{widget.id}",
        params={"load": "click", "position": "left", "color": "#AA0000", "locale": "ru", "label": 'Ask "us"'},
    )
    assert _snippet(chosen.text) == (
        f'<script src="{public}/static/widget/loader.js" data-inbox="{widget.id}" data-load="click"'
        ' data-position="left" data-color="#aa0000" data-locale="ru" data-label="Ask &quot;us&quot;" async></script>'
    )
    # options that do not validate give the default code, never a broken one
    odd = await client.get(f"/settings/inboxes/{widget.id}", params={"color": "red;}", "load": "never"})
    assert 'data-load="delay"' in _snippet(odd.text) and "red" not in _snippet(odd.text)
    loader = await client.http.get(f"{live_api.url}/static/widget/loader.js")
    assert loader.status_code == 200 and "Switchboard" in loader.text
    await client.http.aclose()


async def test_the_widget_settings_are_saved(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        widget = await db.scalar(select(Inbox).where(Inbox.channel == ChannelKind.WIDGET))
    form = {
        "name": "Сайт",
        "default_branch_id": "",
        "escalation_minutes": "4",
        "offline_text": "",
        "auto_reply": "",
        "rating_mode": "stars",
        "attachment_max_mb": "5",
        "attachment_max_count": "3",
        "allowed_domains": "shop.example.com",
        "sse": "on",
        "identity_required": "on",
        "prechat_name": "required",
        "prechat_email": "optional",
        "prechat_phone": "off",
    }
    assert (await client.post(f"/settings/inboxes/{widget.id}", form)).status_code == 303
    async with clean_db() as db:
        saved = (await db.get(Inbox, widget.id)).settings
    assert saved["prechat"] == {"name": "required", "email": "optional", "phone": "off"}
    assert saved["identity_required"] is True and saved["allowed_domains"] == ["shop.example.com"]
    page = await client.get(f"/settings/inboxes/{widget.id}")
    assert re.search(r'<option value="required" selected>', page.text)
    refused = await client.post(f"/settings/inboxes/{widget.id}", {**form, "prechat_phone": "always"})
    assert refused.status_code == 422
    await client.http.aclose()


async def test_the_chat_s_texts_and_expected_reply_time_are_the_inbox_s_own(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        widget = await db.scalar(select(Inbox).where(Inbox.channel == ChannelKind.WIDGET))
    form = {
        "name": "Сайт",
        "default_branch_id": "",
        "escalation_minutes": "4",
        "rating_mode": "none",
        "attachment_max_mb": "5",
        "attachment_max_count": "3",
        "allowed_domains": "shop.example.com",
        "sse": "on",
        "expected_reply_minutes": "120",
        "text_title_ru": "  Магазин «Ромашка»  ",
        "text_hint_ru": "",
        "text_placeholder_en": "Ask <b>us</b>",
        "text_offline_en": "Back at 9.\r\nCall +1 555 0100.",
    }
    assert (await client.post(f"/settings/inboxes/{widget.id}", form)).status_code == 303
    async with clean_db() as db:
        saved = (await db.get(Inbox, widget.id)).settings
    assert saved["widget_texts"] == {
        "en": {"placeholder": "Ask <b>us</b>", "offline": "Back at 9.\nCall +1 555 0100."},
        "ru": {"title": "Магазин «Ромашка»"},
    }
    assert saved["expected_reply_minutes"] == 120
    page = await client.get(f"/settings/inboxes/{widget.id}")
    assert 'value="Магазин «Ромашка»"' in page.text and 'value="Ask &lt;b&gt;us&lt;/b&gt;"' in page.text
    assert re.search(r'name="expected_reply_minutes"[^>]*value="120"', page.text)

    # the chat gets them as it starts (nobody is online here, so it shows the offline banner)
    visitor = Visitor(live_api.url, widget.id, origin="https://shop.example.com")
    started = await visitor.start()
    assert started.status_code == 201, started.text
    config = started.json()["config"]
    assert config["texts"] == saved["widget_texts"]
    assert config["offline"]["expected_minutes"] == 120

    # what does not fit is refused with the field named, and nothing changes
    for field, value, message in (
        ("text_title_en", "x" * 61, None),
        ("text_hint_en", "two\r\nlines", "Этот текст должен быть в одну строку."),
        ("text_offline_ru", "tab\there", "Только обычный текст: без табуляций и управляющих символов."),
        ("expected_reply_minutes", "0", None),
        ("expected_reply_minutes", str(7 * 24 * 60 + 1), None),
    ):
        refused = await client.post(f"/settings/inboxes/{widget.id}", {**form, field: value})
        assert refused.status_code == 422, field
        shown = html.unescape(refused.text)
        assert re.search(rf'<div class="field has-error">\s*<label for="f-{field}"', shown), field
        assert message is None or message in shown, field
    async with clean_db() as db:
        assert (await db.get(Inbox, widget.id)).settings == saved
    # emptied: the chat's own words again, and no reply time
    emptied = ("expected_reply_minutes", "text_title_ru", "text_placeholder_en", "text_offline_en")
    cleared = form | dict.fromkeys(emptied, "")
    assert (await client.post(f"/settings/inboxes/{widget.id}", cleared)).status_code == 303
    again = await Visitor(live_api.url, widget.id, origin="https://shop.example.com").start()
    assert again.json()["config"]["texts"] == {} and again.json()["config"]["offline"]["expected_minutes"] is None
    await client.http.aclose()
