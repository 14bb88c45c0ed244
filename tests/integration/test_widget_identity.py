"""The identity check: a site signs its user's id with the inbox's secret; a signed user is the
same visitor in every browser, a forged or borrowed signature is refused, and an inbox that
requires it serves no anonymous visitor. The secret is made on the inbox's page and shown once."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from domain.enums import ChannelKind
from infra.models import AuditEvent, Inbox
from services.widget_identity import user_signature
from tests.integration.api_support import assert_problem
from tests.integration.settings_support import sign_in
from tests.integration.widget_support import Visitor


async def _start(live_api, inbox_id: int, user: dict | None = None, token: str | None = None):
    visitor = Visitor(live_api.url, inbox_id, token=token)
    answer = await visitor.call("POST", f"/inboxes/{inbox_id}/sessions", json={"token": token, "user": user})
    if answer.status_code == 201:
        visitor.token = answer.json()["token"]
    return visitor, answer


async def test_a_signed_user_is_one_visitor_everywhere_and_nobody_else_can_be_them(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        inbox_id = await db.scalar(select(Inbox.id).where(Inbox.channel == ChannelKind.WIDGET))
    # no secret yet: no signature can hold
    _, refused = await _start(live_api, inbox_id, {"id": "42", "hash": "0" * 64})
    assert assert_problem(refused, 403)["type"] == "urn:switchboard:problem:widget-identity"

    page = await client.post(f"/settings/inboxes/{inbox_id}/identity-secret", {})
    secret = re.search(r'<code id="identity-secret">([^<]+)</code>', page.text).group(1)
    assert secret not in (await client.get(f"/settings/inboxes/{inbox_id}")).text  # shown once
    async with clean_db() as db:
        assert await db.scalar(select(AuditEvent.action).where(AuditEvent.action == "inbox.identity_secret_rotated"))
        assert secret.encode() not in (await db.get(Inbox, inbox_id)).credentials_encrypted  # sealed

    ann = {"id": "user-42", "hash": user_signature(secret, "user-42")}
    laptop, answer = await _start(live_api, inbox_id, ann)
    assert answer.status_code == 201, answer.text
    await laptop.say("from my laptop")
    phone, _ = await _start(live_api, inbox_id, ann)
    assert [m["html"] for m in (await phone.chat())["messages"]] == ["from my laptop"]
    for forged in (
        {"id": "user-43", "hash": ann["hash"]},  # someone else's id with ann's signature
        {"id": "user-42", "hash": user_signature("guessed", "user-42")},
        {"id": "user-42", "hash": "f" * 64},
    ):
        _, refused = await _start(live_api, inbox_id, forged)
        assert_problem(refused, 403)
    _, malformed = await _start(live_api, inbox_id, {"id": "user-42", "hash": "not hex"})
    assert_problem(malformed, 422)

    # required: anonymous visitors get no chat, and their old tokens stop working
    anonymous, _ = await _start(live_api, inbox_id)
    async with clean_db() as db, db.begin():
        settings = (await db.get(Inbox, inbox_id)).settings
        await db.execute(
            update(Inbox).where(Inbox.id == inbox_id).values(settings={**settings, "identity_required": True})
        )
    _, refused = await _start(live_api, inbox_id)
    assert_problem(refused, 403)
    _, renewed = await _start(live_api, inbox_id, token=anonymous.token)
    assert_problem(renewed, 403)
    assert_problem(await anonymous.call("GET", "/chat"), 401)
    assert (await laptop.call("GET", "/chat")).status_code == 200
    await client.http.aclose()
