"""The API channel as an integrator uses it: an inbox of kind `api` (created by an admin), into
which the integrator posts its customers' messages (through ingest, like every channel, stored
once per its message id) and reports what became of our replies (delivered, read), which moves
their status on and announces it (`message.status_changed`, to the cabinet and the webhooks)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.api.parse import parse_update
from domain.enums import ChannelKind, DeliveryStatus, MessageDirection
from domain.events import MessageStatusChanged
from domain.wording import N_
from infra.event_log import load_conversation_ids, publish
from infra.models import ApiToken, Inbox, Message
from services import audit
from services.errors import Forbidden, Invalid
from services.ingest import ingest

NAME_MAX = 200
NO_SUCH_BRANCH = N_("There is no such branch.")
# a receipt moves a reply on, never back: read implies delivered
_ORDER = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}


async def create_inbox(
    db: AsyncSession, name: str, *, default_branch_id: int | None = None, operator_id: int | None
) -> Inbox:
    """A new API-channel inbox: no credentials (the integrator calls us with its API token).
    Flushed, not committed."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid(N_("Give the inbox a name of 1 to %(max)s characters."), field="name", max=NAME_MAX)
    inbox = Inbox(name=name, channel=ChannelKind.API, default_branch_id=default_branch_id)
    db.add(inbox)
    await db.flush()
    audit.record(db, "inbox.created", operator_id=operator_id, details={"inbox_id": inbox.id, "channel": "api"})
    return inbox


async def api_inbox(db: AsyncSession, token: ApiToken, inbox_id: int) -> Inbox:
    """The API-channel inbox `token` may post to: an active one of the token's branches (by the
    inbox's default branch) or any, for a token of all branches; Forbidden (404) otherwise."""
    inbox = await db.get(Inbox, inbox_id)
    if inbox is None or inbox.channel != ChannelKind.API or not inbox.is_active:
        raise Forbidden()
    if token.branch_ids is not None and inbox.default_branch_id not in token.branch_ids:
        raise Forbidden()
    return inbox


@dataclass(frozen=True)
class Posted:
    conversation_id: int
    message_id: int
    duplicate: bool  # this message id was posted before: nothing new was stored


async def post_inbound(factory: async_sessionmaker[AsyncSession], inbox_id: int, payload: object) -> Posted:
    """Store a customer's message posted by the integrator (`channels.api.parse` validates it:
    MalformedUpdate when it is not one). Ingest commits on its own; the same message id posted
    again, also at once, stores nothing and answers the message stored first."""
    [event] = parse_update(inbox_id, payload)
    result = await ingest(factory, event)
    async with factory() as db:
        message = await db.scalar(
            select(Message).where(
                Message.inbox_id == inbox_id, Message.provider_message_id == event.provider_message_id
            )
        )
    if message is None or message.direction != MessageDirection.IN:
        raise Invalid(N_("This message id is taken by another message of the inbox."), field="message.id")
    return Posted(message.conversation_id, message.id, result.duplicate or result.message_id != message.id)


async def report_receipt(db: AsyncSession, inbox: Inbox, message_id: int, status: DeliveryStatus) -> Message:
    """The integrator's customer got (delivered) or read our reply `message_id`. A report that
        would move it back (delivered after read) changes nothing; a failed message stays failed. Like
    a provider's report it is not audited."""
    message = await db.scalar(
        select(Message)
        .where(Message.id == message_id, Message.inbox_id == inbox.id, Message.direction == MessageDirection.OUT)
        .with_for_update()
    )
    if message is None or message.is_note:
        raise Invalid(N_("There is no such reply in this inbox."), field="message_id")
    current = _ORDER.get(message.delivery_status)
    if current is None or current >= _ORDER[status]:
        return message
    message.delivery_status = status
    ref = await load_conversation_ids(db, message.conversation_id)
    await publish(db, MessageStatusChanged.of(ref, message_id=message.id, status=status))
    return message
