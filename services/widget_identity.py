"""The identity check of a website chat: a site whose users sign in signs its user's id with the
inbox's identity secret, `hex(HMAC-SHA256(secret, user_id))`, and passes both to the widget
(`Switchboard.setUser({id, hash, name, email})`). A verified user is the same visitor in every
browser (their conversation follows them); nobody can pose as another user without the secret.
The inbox may require it, and then serves no anonymous visitor."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ChannelKind
from domain.wording import N_
from infra.models import Inbox, Operator
from infra.security import CredentialBox
from services import audit
from services.errors import Invalid
from services.inbox_settings import get_inbox
from services.operators import require_admin

USER_ID_MAX = 200


def user_signature(secret: str, user_id: str) -> str:
    """What the site computes on its server for its signed-in user."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_secret(box: CredentialBox, inbox: Inbox) -> str | None:
    return box.open(inbox.credentials_encrypted).get("identity_secret") if inbox.credentials_encrypted else None


def identified_visitor(secret: str | None, inbox_id: int, user_id: str, signature: str) -> str | None:
    """The visitor id of a user whose signature holds, None otherwise (or without a secret)."""
    if secret is None or not user_id or len(user_id) > USER_ID_MAX:
        return None
    if not hmac.compare_digest(user_signature(secret, user_id), signature.lower()):
        return None
    return "u" + hashlib.sha256(f"{inbox_id}:{user_id}".encode()).hexdigest()[:40]


def anonymous(visitor_id: str) -> bool:
    return not visitor_id.startswith("u")


async def new_identity_secret(db: AsyncSession, box: CredentialBox, actor: Operator, inbox_id: int) -> str:
    """A new identity secret for a widget inbox, returned once to show; signatures made with the
    previous one stop holding at once."""
    require_admin(actor)
    inbox = await get_inbox(db, inbox_id, lock=True)
    if inbox.channel != ChannelKind.WIDGET:
        raise Invalid(N_("Only a website chat has an identity secret."))
    secret = secrets.token_urlsafe(32)
    credentials = box.open(inbox.credentials_encrypted) if inbox.credentials_encrypted else {}
    inbox.credentials_encrypted = box.seal({**credentials, "identity_secret": secret})
    audit.record(db, "inbox.identity_secret_rotated", operator_id=actor.id, details={"inbox_id": inbox.id})
    return secret
