"""Website widget visitors: their signed session tokens and who a token names.

A visitor is a random id, one per browser and inbox (kept in the widget's localStorage with its
token); they become a contact identity of the widget channel at their first message, through the
one ingest path. The token is `<payload>.<signature>`, both base64url: the payload names the
inbox, the visitor and the expiry; the signature is HMAC-SHA256 with WIDGET_SECRET (or, unset, a
key derived from CREDENTIALS_KEY, so no second secret has to be kept). Renewing a live token gives
the same visitor a new expiry; an expired or forged one names nobody.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ChannelKind, ConversationStatus
from infra.models import ContactIdentity, Conversation, Inbox
from infra.settings import Settings

TOKEN_MAX = 400  # a token is about 150 characters; anything much longer is not one of ours


@dataclass(frozen=True, slots=True)
class VisitorSession:
    inbox_id: int
    visitor_id: str
    expires_at: datetime


def signing_key(settings: Settings) -> bytes:
    if settings.widget_secret is not None:
        return settings.widget_secret.get_secret_value().encode()
    if settings.credentials_key is None:
        raise RuntimeError("neither WIDGET_SECRET nor CREDENTIALS_KEY is set")
    # a key of its own, so a visitor token can never be mistaken for anything sealed with the other
    return hmac.new(settings.credentials_key.get_secret_value().encode(), b"widget visitor tokens", "sha256").digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_visitor_id() -> str:
    return "v" + secrets.token_urlsafe(18)


def issue(key: bytes, inbox_id: int, visitor_id: str, lifetime: timedelta) -> tuple[str, VisitorSession]:
    expires = datetime.now(UTC).replace(microsecond=0) + lifetime
    payload = _b64(json.dumps({"i": inbox_id, "v": visitor_id, "x": int(expires.timestamp())}).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}", VisitorSession(inbox_id, visitor_id, expires)


def verify(key: bytes, token: str | None) -> VisitorSession | None:
    """The session a token names, or None: malformed, forged, or expired."""
    if not token or len(token) > TOKEN_MAX or token.count(".") != 1:
        return None
    payload, signature = token.split(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        fields = json.loads(_unb64(payload))
        session = VisitorSession(int(fields["i"]), str(fields["v"]), datetime.fromtimestamp(int(fields["x"]), UTC))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires_at <= datetime.now(UTC):
        return None
    return session


async def widget_inbox(db: AsyncSession, inbox_id: int) -> Inbox | None:
    """A switched-on widget inbox, or None (any other id is as if it did not exist)."""
    inbox = await db.get(Inbox, inbox_id)
    if inbox is None or inbox.channel != ChannelKind.WIDGET or not inbox.is_active:
        return None
    return inbox


async def current_conversation(db: AsyncSession, session: VisitorSession) -> Conversation | None:
    """The visitor's newest conversation in the inbox: the live one, else the last closed one
    (its history stays visible until they write again, which starts a new one)."""
    return await db.scalar(
        select(Conversation)
        .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
        .where(
            ContactIdentity.channel == ChannelKind.WIDGET,
            ContactIdentity.provider_user_id == session.visitor_id,
            Conversation.inbox_id == session.inbox_id,
        )
        .order_by((Conversation.status != ConversationStatus.CLOSED).desc(), Conversation.id.desc())
        .limit(1)
    )
