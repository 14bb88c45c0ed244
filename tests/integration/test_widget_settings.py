"""The website chat on its inbox's settings page: the code to paste, its options, and the CSP
lines the site needs; what the code names exists and starts the chat (tests/e2e/test_widget.py)."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from domain.enums import ChannelKind
from infra.models import Inbox
from tests.integration.settings_support import sign_in


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
