"""Activities of DeliveryWorkflow: send one outgoing message through its conversation's own
channel, and record every attempt (the integration journal).

Provider outcomes are returned, not raised: the workflow owns the retry schedule (exact
retry_after, exponential backoff, give-up time). Only infrastructure failures raise, and
Temporal retries those.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from channels.base import ChannelAdapter, Sending
from domain.contracts import (
    ChatMigratedError,
    DeliveryError,
    OutboundAttachment,
    OutboundMessage,
    RateLimitedError,
    RecipientBlockedError,
    RetryableError,
)
from domain.delivery import (
    FAIL_DELIVERY,
    PREPARE_DELIVERY,
    SEND_MESSAGE,
    DeliveryPlan,
    FailRequest,
    Outcome,
    PrepareRequest,
    SendOutcome,
    SendRequest,
)
from domain.enums import ChannelKind, DeliveryStatus, ErrorClass, MessageDirection, SenderKind
from domain.events import ContactReachabilityChanged, MessageStatusChanged
from infra.event_log import load_conversation_ids, publish
from infra.files import FileStore
from infra.models import Attachment, ContactIdentity, Conversation, DeliveryAttempt, Inbox, Message
from infra.ratelimit import reserve
from infra.security import CredentialBox
from infra.settings import Settings
from services import audit

log = logging.getLogger(__name__)


async def _status_changed(db: AsyncSession, message: Message, status: DeliveryStatus, *, error: str | None = None):
    ref = await load_conversation_ids(db, message.conversation_id)
    await publish(db, MessageStatusChanged.of(ref, message_id=message.id, status=status, error=error))


PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
FINAL = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED)
# a rate slot further away than this is not waited for inside the activity
MAX_SLOT_WAIT = 20.0
HEARTBEAT_EVERY = 3.0  # well inside the workflow's 15 s heartbeat timeout


class DeliveryActivities:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        adapters: dict[ChannelKind, ChannelAdapter],
        box: CredentialBox,
        settings: Settings,
    ) -> None:
        self._factory = factory
        self._adapters = adapters
        self._box = box
        self._settings = settings
        self._store = FileStore.from_settings(settings)

    @activity.defn(name=PREPARE_DELIVERY)
    async def prepare_delivery(self, request: PrepareRequest) -> DeliveryPlan:
        message_id = request.message_id
        async with self._factory() as db:
            message = await db.get(Message, message_id)
            give_up = timedelta(hours=self._settings.delivery_give_up_hours)
            if message is None or message.delivery_status in FINAL:
                return DeliveryPlan(final=True, give_up_after=give_up)
            predecessor = await db.scalar(
                select(Message.id)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.direction == MessageDirection.OUT,
                    Message.delivery_status.in_(PENDING),
                    Message.id < message_id,
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
            return DeliveryPlan(predecessor_id=predecessor, give_up_after=give_up)

    @activity.defn(name=SEND_MESSAGE)
    async def send_message(self, request: SendRequest) -> SendOutcome:
        async with _heartbeating():
            return await self._send(request)

    async def _send(self, request: SendRequest) -> SendOutcome:
        loaded = await self._load(request.message_id)
        if loaded is None:
            return SendOutcome(outcome=Outcome.FAILED, reason="message not found")
        message, conversation, identity, inbox = loaded
        if message.delivery_status in FINAL:
            # a retry of an attempt that already recorded its result
            outcome = Outcome.SENT if message.delivery_status != DeliveryStatus.FAILED else Outcome.FAILED
            return SendOutcome(
                outcome=outcome, sent_parts=list(message.sent_provider_ids), successor_id=await self._successor(message)
            )
        if not identity.reachable:
            return await self._fail(message, ErrorClass.PERMANENT, "the contact blocked the bot or stopped it", None)

        adapter = self._adapters.get(inbox.channel)
        if not isinstance(adapter, Sending):
            return await self._fail(
                message, ErrorClass.PERMANENT, f"{inbox.channel.value} has no adapter that sends", None
            )
        # A slot is reserved once per message; when it is far off, the workflow sleeps until it
        # and hands it back (reserving anew each time would push the clocks ahead of real time
        # and starve every chat once enough of them wait).
        slot = request.slot_at or await self._reserve_slot(adapter, inbox, identity.provider_chat_id)
        wait = (slot - datetime.now(UTC)).total_seconds()
        if wait > MAX_SLOT_WAIT:
            return SendOutcome(
                outcome=Outcome.RATE_LIMITED,
                reason="our own rate limit",
                retry_after=wait,
                sent_parts=request.sent_parts,
                slot_at=slot,
            )
        await asyncio.sleep(max(wait, 0.0))
        await self._mark_sending(message)

        outbound = OutboundMessage(
            message_id=message.id,
            conversation_id=conversation.id,
            inbox_id=inbox.id,
            channel=inbox.channel,
            provider_chat_id=identity.provider_chat_id,
            text=message.text,
            format=message.format,
            attachments=await self._attachments(message.id),
        )
        correlation = f"{activity.info().workflow_id}/{request.attempt}/{uuid.uuid4().hex[:8]}"
        began = time.monotonic()
        try:
            result = await adapter.send(
                self._box.open(inbox.credentials_encrypted),
                outbound,
                self._files(outbound),
                skip_parts=len(request.sent_parts),
            )
        except DeliveryError as exc:
            latency = int((time.monotonic() - began) * 1000)
            sent = request.sent_parts + list(getattr(exc, "sent_message_ids", ()))
            return await self._failed_attempt(message, identity, request.attempt, exc, latency, correlation, sent)
        latency = int((time.monotonic() - began) * 1000)
        sent = request.sent_parts + list(result.provider_message_ids)
        # The provider has it now: if recording failed and Temporal retried this activity, it
        # would send again. So the record itself is retried here first.
        for pause in (0.2, 1, 3, 10, None):
            try:
                await self._mark_sent(message, sent, request.attempt, latency, correlation)
                break
            except Exception:
                if pause is None:
                    raise
                log.warning("recording sent message %s failed; retrying", message.id, exc_info=True)
                await asyncio.sleep(pause)
        return SendOutcome(outcome=Outcome.SENT, sent_parts=sent, successor_id=await self._successor(message))

    @activity.defn(name=FAIL_DELIVERY)
    async def fail_delivery(self, request: FailRequest) -> SendOutcome:
        """The workflow gave up (24 h of retryable errors)."""
        async with self._factory() as db:
            message = await db.get(Message, request.message_id)
        if message is None:
            return SendOutcome(outcome=Outcome.FAILED, reason=request.reason)
        return await self._fail(message, ErrorClass.RETRYABLE, request.reason, None)

    # -- helpers ------------------------------------------------------------------------------

    async def _load(self, message_id: int) -> tuple[Message, Conversation, ContactIdentity, Inbox] | None:
        async with self._factory() as db:
            row = (
                await db.execute(
                    select(Message, Conversation, ContactIdentity, Inbox)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
                    # the conversation's own inbox: a reply never leaves through another channel
                    .join(Inbox, Inbox.id == Conversation.inbox_id)
                    .where(Message.id == message_id, Message.direction == MessageDirection.OUT)
                )
            ).first()
        return tuple(row) if row is not None else None  # type: ignore[return-value]

    @staticmethod
    def _limits(adapter: Sending, inbox: Inbox, chat_id: str) -> dict[str, float]:
        """{rate key: seconds between sends} for this inbox's bot and this chat."""
        limits = {}
        if adapter.rate_per_bot > 0:
            limits[f"{inbox.channel.value}:{inbox.id}"] = 1 / adapter.rate_per_bot
        if adapter.rate_per_chat > 0:
            limits[f"{inbox.channel.value}:{inbox.id}:{chat_id}"] = 1 / adapter.rate_per_chat
        return limits

    async def _reserve_slot(self, adapter: Sending, inbox: Inbox, chat_id: str) -> datetime:
        limits = self._limits(adapter, inbox, chat_id)
        if not limits:
            return datetime.now(UTC)
        async with self._factory() as db, db.begin():
            return await reserve(db, limits)

    async def _attachments(self, message_id: int) -> list[OutboundAttachment]:
        async with self._factory() as db:
            rows = (
                await db.scalars(
                    select(Attachment).where(Attachment.message_id == message_id, Attachment.sha256.is_not(None))
                )
            ).all()
        return [
            OutboundAttachment(
                attachment_id=a.id, file_name=a.file_name, mime_type=a.mime_type, size=a.size or 0, sha256=a.sha256
            )
            for a in rows
        ]

    def _files(self, message: OutboundMessage) -> dict[int, bytes]:
        return {a.attachment_id: self._store.read(a.sha256) for a in message.attachments}

    async def _mark_sending(self, message: Message) -> None:
        if message.delivery_status != DeliveryStatus.QUEUED:
            return
        async with self._factory() as db, db.begin():
            changed = await db.execute(
                update(Message)
                .where(Message.id == message.id, Message.delivery_status == DeliveryStatus.QUEUED)
                .values(delivery_status=DeliveryStatus.SENDING)
            )
            if changed.rowcount:
                await _status_changed(db, message, DeliveryStatus.SENDING)

    async def _mark_sent(self, message: Message, sent: list[str], attempt: int, latency: int, correlation: str) -> None:
        """The attempt's journal row and the message's new status, in one transaction."""
        now = datetime.now(UTC)
        async with self._factory() as db, db.begin():
            db.add(
                DeliveryAttempt(
                    message_id=message.id,
                    attempt=attempt,
                    outcome="sent",
                    latency_ms=latency,
                    correlation_id=correlation,
                )
            )
            await db.execute(
                update(Message)
                .where(Message.id == message.id)
                .values(
                    delivery_status=DeliveryStatus.SENT,
                    sent_at=now,
                    sent_provider_ids=sent,
                    error=None,
                    error_class=None,
                )
            )
            if message.sender_kind in (SenderKind.OPERATOR, SenderKind.INTEGRATION):
                # only a person's answer (in the cabinet or through the API) makes it "answered"
                await db.execute(
                    update(Conversation).where(Conversation.id == message.conversation_id).values(last_out_at=now)
                )
            await _status_changed(db, message, DeliveryStatus.SENT)

    async def _failed_attempt(
        self,
        message: Message,
        identity: ContactIdentity,
        attempt: int,
        exc: DeliveryError,
        latency: int,
        correlation: str,
        sent: list[str],
    ) -> SendOutcome:
        code = None if exc.provider_code is None else str(exc.provider_code)
        await self._record(message.id, attempt, exc.error_class.value, code, exc.reason, latency, correlation)
        if isinstance(exc, ChatMigratedError):
            async with self._factory() as db, db.begin():
                await db.execute(
                    update(ContactIdentity)
                    .where(ContactIdentity.id == identity.id)
                    .values(provider_chat_id=exc.new_chat_id)
                )
            return SendOutcome(outcome=Outcome.MIGRATED, reason=exc.reason, sent_parts=sent)
        if isinstance(exc, RateLimitedError):
            return SendOutcome(
                outcome=Outcome.RATE_LIMITED, reason=exc.reason, retry_after=exc.retry_after, sent_parts=sent
            )
        if isinstance(exc, RetryableError):
            return SendOutcome(outcome=Outcome.RETRYABLE, reason=exc.reason, sent_parts=sent)
        if isinstance(exc, RecipientBlockedError):
            await self._mark_unreachable(identity, message.conversation_id, exc.reason)
        return await self._fail(message, ErrorClass.PERMANENT, exc.reason, code)

    async def _mark_unreachable(self, identity: ContactIdentity, conversation_id: int, reason: str) -> None:
        async with self._factory() as db, db.begin():
            await db.execute(
                update(ContactIdentity)
                .where(ContactIdentity.id == identity.id)
                .values(reachable=False, unreachable_reason=reason)
            )
            audit.record(
                db,
                "contact.unreachable",
                conversation_id=conversation_id,
                details={"identity_id": identity.id, "reason": reason},
            )
            ref = await load_conversation_ids(db, conversation_id)
            await publish(db, ContactReachabilityChanged.of(ref, identity_id=identity.id, reachable=False))

    async def _fail(self, message: Message, error_class: ErrorClass, reason: str, code: str | None) -> SendOutcome:
        async with self._factory() as db, db.begin():
            await db.execute(
                update(Message)
                .where(Message.id == message.id)
                .values(delivery_status=DeliveryStatus.FAILED, error_class=error_class, error=reason)
            )
            await _status_changed(db, message, DeliveryStatus.FAILED, error=reason)
        return SendOutcome(outcome=Outcome.FAILED, reason=reason, successor_id=await self._successor(message))

    async def _record(
        self,
        message_id: int,
        attempt: int,
        outcome: str,
        code: str | None,
        error: str | None,
        latency: int,
        correlation: str,
    ) -> None:
        async with self._factory() as db, db.begin():
            db.add(
                DeliveryAttempt(
                    message_id=message_id,
                    attempt=attempt,
                    outcome=outcome,
                    provider_code=code,
                    error=error,
                    latency_ms=latency,
                    correlation_id=correlation,
                )
            )

    async def _successor(self, message: Message) -> int | None:
        async with self._factory() as db:
            return await db.scalar(
                select(Message.id)
                .where(
                    Message.conversation_id == message.conversation_id,
                    Message.direction == MessageDirection.OUT,
                    Message.delivery_status.in_(PENDING),
                    Message.id > message.id,
                )
                .order_by(Message.id)
                .limit(1)
            )

    def all(self) -> list[Any]:
        return [self.prepare_delivery, self.send_message, self.fail_delivery]


@asynccontextmanager
async def _heartbeating(every: float = HEARTBEAT_EVERY) -> AsyncIterator[None]:
    """Heartbeat in the background while the body waits on the rate slot or the provider."""

    async def pump() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
