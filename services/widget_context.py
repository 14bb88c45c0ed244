"""What the operator sees of a website visitor, stored with the conversation as
`conversations.visitor_context` (JSON, the shape of `VisitorContext`):

    {"page": {"url": "https://shop.example.com/cart", "title": "Cart"},
     "first": {"landing_url": "https://shop.example.com/?utm_source=ads", "referrer": "https://google.com/",
               "utm": {"source": "ads"}},
     "browser": "Chrome 131", "os": "Android 14", "device": "phone", "language": "ru-RU",
     "timezone": "Europe/Moscow", "screen": "412x915", "region": "RU-MOW", "updated_at": "2026-11-27T16:00:00+00:00"}

`page` follows the visitor as they browse (announced live as `conversation.visitor_context_updated`);
`first` is their first visit's and never changes. And whether anyone answers now: the offline
state the widget shows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OperatorStatus, PhoneSource
from domain.events import ContactUpdated, VisitorContextUpdated
from infra.event_log import conversation_ids, publish
from infra.models import Contact, Conversation, Inbox, Operator
from services.assignment import branch_is_open
from services.branches import which_branch
from services.widget_sessions import VisitorSession, current_conversation

URL_MAX = 2000
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE = r"^\+?[\d\s()-]{5,40}$"
UTM = ("source", "medium", "campaign", "term", "content")


def _web_url(value: str | None) -> str | None:
    if not value:
        return None
    return value if urlsplit(value).scheme in ("http", "https") else None


class ContextIn(BaseModel):
    """What the widget reports (every field optional; free text cut to size)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    url: str | None = Field(default=None, max_length=URL_MAX)
    title: str | None = Field(default=None, max_length=300)
    referrer: str | None = Field(default=None, max_length=URL_MAX)
    language: str | None = Field(default=None, max_length=35)
    timezone: str | None = Field(default=None, max_length=64)
    screen: str | None = Field(default=None, max_length=20, pattern=r"^\d{1,5}x\d{1,5}$")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL)
    phone: str | None = Field(default=None, max_length=40, pattern=PHONE)

    _urls = field_validator("url", "referrer")(_web_url)


_BROWSERS = (("Edge", r"Edg/(\d+)"), ("Opera", r"OPR/(\d+)"), ("Firefox", r"Firefox/(\d+)"),
             ("Chrome", r"Chrome/(\d+)"), ("Safari", r"Version/(\d+)[\d.]* .*Safari"))  # fmt: skip
_SYSTEMS = (("Android", r"Android (\d+)"), ("iOS", r"OS (\d+)_\d+ like Mac"), ("Windows", r"Windows NT ([\d.]+)"),
            ("macOS", r"Mac OS X (\d+[_.]\d+)"), ("Linux", r"Linux"))  # fmt: skip


def describe_agent(agent: str) -> dict[str, str]:
    """Browser, system and kind of device from a User-Agent, as far as it plainly says."""
    found: dict[str, str] = {}
    for name, pattern in _BROWSERS:
        if m := re.search(pattern, agent):
            found["browser"] = f"{name} {m.group(1)}"
            break
    for name, pattern in _SYSTEMS:
        if m := re.search(pattern, agent):
            version = m.group(1).replace("_", ".") if m.groups() else ""
            found["os"] = f"{name} {version}".strip()
            break
    if re.search(r"iPad|Tablet", agent):
        found["device"] = "tablet"
    elif re.search(r"Mobi|iPhone|Android", agent):
        found["device"] = "phone"
    elif agent:
        found["device"] = "desktop"
    return found


def merged(stored: dict[str, Any], given: ContextIn, agent: str, region: str | None) -> dict[str, Any]:
    context = dict(stored)
    if given.url:
        context["page"] = {"url": given.url, "title": given.title or ""}
        if "first" not in context:
            utm = {k: v[:200] for k, v in parse_qsl(urlsplit(given.url).query) if k.startswith("utm_")}
            context["first"] = {
                "landing_url": given.url,
                "referrer": given.referrer,
                "utm": {key: utm[f"utm_{key}"] for key in UTM if f"utm_{key}" in utm},
            }
    for key in ("language", "timezone", "screen"):
        if value := getattr(given, key):
            context[key] = value
    context.update(describe_agent(agent[:500]))
    if region:
        context["region"] = region
    return context


async def update_context(
    db: AsyncSession, session: VisitorSession, given: ContextIn, *, agent: str, region: str | None
) -> bool:
    """Store what the widget reported in the visitor's live conversation (nothing before their
    first message: the widget sends it again then). True when something changed."""
    conversation = await current_conversation(db, session)
    if conversation is None:
        return False
    before = dict(conversation.visitor_context or {})
    after = merged(before, given, agent, region)
    told = given.model_dump(include={"name", "email", "phone"}, exclude_none=True)
    if told:
        after["contact"] = {**before.get("contact", {}), **told}
        await _fill_contact(db, conversation, told)
    if _without_time(after) == _without_time(before):
        return False
    after["updated_at"] = datetime.now(UTC).isoformat()
    conversation.visitor_context = after
    await publish(db, VisitorContextUpdated.of(conversation_ids(conversation)))
    return True


async def _fill_contact(db: AsyncSession, conversation: Conversation, told: dict[str, str]) -> None:
    """What the site says of its visitor fills the contact's empty fields (and a phone the
    visitor gave before); never what an operator entered."""
    contact = await db.get(Contact, conversation.contact_id, with_for_update=True)
    if contact is None:
        return
    changed = []
    if told.get("name") and not contact.display_name:
        contact.display_name = told["name"]
        changed.append("display_name")
    if told.get("email") and not contact.email:
        contact.email = told["email"]
        changed.append("email")
    phone = told.get("phone")
    if phone and phone != contact.phone and (contact.phone is None or contact.phone_source == PhoneSource.CUSTOMER):
        contact.phone, contact.phone_source = phone, PhoneSource.CUSTOMER
        changed.append("phone")
    if changed:
        await publish(
            db, ContactUpdated.of(conversation_ids(conversation), contact_id=contact.id, fields=sorted(changed))
        )


def _without_time(context: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in context.items() if k != "updated_at"}


async def offline_state(db: AsyncSession, inbox: Inbox, region: str | None) -> dict[str, Any] | None:
    """None while the visitor's branch is open with someone online; else what the banner says."""
    branch = (await which_branch(db, region, inbox_default=inbox.default_branch_id)).branch
    now = datetime.now(UTC)
    if branch is not None and await branch_is_open(db, branch.id, now):
        someone = await db.scalar(
            select(
                exists().where(
                    Operator.branch_id == branch.id, Operator.status == OperatorStatus.ONLINE, Operator.is_active
                )
            )
        )
        if someone:
            return None
    s = inbox.settings or {}
    return {"text": s.get("offline_text") or None, "expected_minutes": s.get("expected_reply_minutes")}


def prechat_fields(inbox: Inbox, offline: bool) -> dict[str, str]:
    """The pre-chat form: each asked field, "optional" or "required". While nobody answers, the
    visitor is also asked for their name, e-mail and phone, so their request can be answered."""
    asked = {k: v for k, v in ((inbox.settings or {}).get("prechat") or {}).items() if v in ("optional", "required")}
    if offline:
        for field in ("name", "email", "phone"):
            asked.setdefault(field, "optional")
    return asked


def missing_details(fields: dict[str, str], given: dict[str, str | None]) -> list[str]:
    return [field for field, mode in fields.items() if mode == "required" and not given.get(field)]
