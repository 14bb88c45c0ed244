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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.heartbeats import heartbeating
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
    FAIL_STUCK_DELIVERIES,
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
from infra import metrics
from infra.event_log import load_conversation_ids, publish
from infra.files import FileStore
from infra.logs import correlated
from infra.models import Attachment, ContactChat, Conversation, DeliveryAttempt, Inbox, Message, OutboxEvent
from infra.ratelimit import Limit, reserve
from infra.security import CredentialBox
from infra.settings import Settings
from infra.temporal import delivery_running
from services import audit
from services.outbox import DELIVER

log = logging.getLogger(__name__)


async def _status_changed(db: AsyncSession, message: Message, status: DeliveryStatus, *, error: str | None = None):
    ref = await load_conversation_ids(db, message.conversation_id)
    await publish(db, MessageStatusChanged.of(ref, message_id=message.id, status=status, error=error))


def _status(status: DeliveryStatus):
    return literal(status, Message.__table__.c.delivery_status.type)


PENDING = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING)
FINAL = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED)
# earlier pending messages of one chat looked at when verifying which one to wait for
VERIFY_AT_MOST = 20
SWEEP_BATCH = 500  # stuck messages failed per sweep; the next pass takes the rest
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
            earlier = (
                await db.scalars(
                    select(Message.id)
                    .where(
                        Message.conversation_id == message.conversation_id,
                        Message.direction == MessageDirection.OUT,
                        Message.delivery_status.in_(PENDING),
                        Message.id < message_id,
                    )
                    .order_by(Message.id.desc())
                    .limit(1 if not request.verify_predecessor else VERIFY_AT_MOST)
                )
            ).all()
            predecessor = next(iter(earlier), None)
            if request.verify_predecessor:
                # the latest earlier message whose delivery runs or is about to start; one whose
                # workflow ended without a final status waits for the sweep, holding no one
                predecessor = None
                for candidate in earlier:
                    if await self._delivery_alive(db, candidate):
                        predecessor = candidate
                        break
            return DeliveryPlan(predecessor_id=predecessor, give_up_after=give_up, created_at=message.created_at)

    @staticmethod
    async def _delivery_alive(db: AsyncSession, message_id: int) -> bool:
        """Its delivery-{id} runs, or the outbox has yet to start it."""
        if await db.scalar(select(_delivery_pending(message_id).exists())):
            return True
        return await delivery_running(activity.client(), message_id)

    @activity.defn(name=FAIL_STUCK_DELIVERIES)
    async def fail_stuck_deliveries(self) -> int:
        """The sweep: outgoing messages still queued or sending past their give-up time whose
        delivery no longer runs (terminated, timed out, lost) are failed onto the dead-letter list."""
        hours = self._settings.delivery_give_up_hours
        async with self._factory() as db:
            stuck = (
                await db.scalars(
                    select(Message)
                    .where(
                        Message.direction == MessageDirection.OUT,
                        Message.delivery_status.in_(PENDING),
                        Message.created_at < datetime.now(UTC) - timedelta(hours=hours),
                        ~_delivery_pending(Message.id).exists(),
                    )
                    .order_by(Message.id)
                    .limit(SWEEP_BATCH)
                )
            ).all()
        failed = 0
        for message in stuck:
            activity.heartbeat()
            if await delivery_running(activity.client(), message.id):
                continue  # a supervisor's retry, counting its own give-up time
            reason = f"not sent within {hours} h and no delivery was running for it"
            await self._fail(message, ErrorClass.RETRYABLE, reason, None)
            failed += 1
        if failed:
            log.warning("failed %d outgoing messages left pending with no delivery running", failed)
        return failed

    @activity.defn(name=SEND_MESSAGE)
    async def send_message(self, request: SendRequest) -> SendOutcome:
        async with heartbeating(HEARTBEAT_EVERY):
            return await self._send(request)

    async def _send(self, request: SendRequest) -> SendOutcome:
        loaded = await self._load(request.message_id)
        if loaded is None:
            return SendOutcome(outcome=Outcome.FAILED, reason="message not found")
        message, conversation, chat, inbox = loaded
        if message.delivery_status in FINAL:
            # a retry of an attempt that already recorded its result
            outcome = Outcome.SENT if message.delivery_status != DeliveryStatus.FAILED else Outcome.FAILED
            return SendOutcome(
                outcome=outcome, sent_parts=list(message.sent_provider_ids), successor_id=await self._successor(message)
            )
        if not chat.reachable:
            return await self._fail(message, ErrorClass.PERMANENT, "the contact blocked the bot or stopped it", None)

        adapter = self._adapters.get(inbox.channel)
        if not isinstance(adapter, Sending):
            return await self._fail(
                message, ErrorClass.PERMANENT, f"{inbox.channel.value} has no adapter that sends", None
            )
        # A slot is reserved once per part; when it is far off, the workflow sleeps until it and
        # hands it back (reserving anew each time would push the clocks ahead of real time and
        # starve every chat once enough of them wait).
        chat_id = chat.provider_chat_id
        slot = request.slot_at or await self._reserve_slot(adapter, inbox, chat_id)
        wait = (slot - datetime.now(UTC)).total_seconds()
        if wait > MAX_SLOT_WAIT:
            return SendOutcome(
                outcome=Outcome.RATE_LIMITED,
                reason="our own rate limit",
                retry_after=wait,
                sent_parts=request.sent_parts,
                slot_at=slot,
            )
        # Everything the send needs is ready before its slot comes: what follows the slot is the
        # request itself, so the provider sees the sends as evenly spaced as they were scheduled.
        await self._mark_sending(message)
        outbound = OutboundMessage(
            message_id=message.id,
            conversation_id=conversation.id,
            inbox_id=inbox.id,
            channel=inbox.channel,
            provider_chat_id=chat_id,
            text=message.text,
            format=message.format,
            attachments=await self._attachments(message.id),
        )
        credentials = self._box.open(inbox.credentials_encrypted)
        files = self._files(outbound)
        pace = _Pacer(slot, lambda: self._reserve_slot(adapter, inbox, chat_id))
        # the request that queued the message names every attempt in the journal and the logs
        correlation = (
            f"{message.correlation_id or activity.info().workflow_id}/{request.attempt}/{uuid.uuid4().hex[:8]}"
        )
        channel = inbox.channel.value
        if request.attempt > 1:
            metrics.DELIVERY_RETRIES.labels(channel=channel).inc()
        began = time.monotonic()
        try:
            with correlated(message.correlation_id):
                result = await adapter.send(
                    credentials, outbound, files, skip_parts=len(request.sent_parts), before_step=pace
                )
        except _SlotFarOff as far:  # a later part's slot: the workflow waits for it
            return SendOutcome(
                outcome=Outcome.RATE_LIMITED,
                reason="our own rate limit",
                retry_after=far.wait,
                sent_parts=request.sent_parts + list(far.sent_message_ids),
                slot_at=far.slot,
            )
        except DeliveryError as exc:
            latency = int((time.monotonic() - began - pace.waited) * 1000)
            metrics.DELIVERIES.labels(channel=channel, outcome=exc.error_class.value).inc()
            metrics.DELIVERY_LATENCY.labels(channel=channel).observe(latency / 1000)
            sent = request.sent_parts + list(getattr(exc, "sent_message_ids", ()))
            return await self._failed_attempt(message, chat, request.attempt, exc, latency, correlation, sent)
        latency = int((time.monotonic() - began - pace.waited) * 1000)
        metrics.DELIVERIES.labels(channel=channel, outcome="sent").inc()
        metrics.DELIVERY_LATENCY.labels(channel=channel).observe(latency / 1000)
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

    async def _load(self, message_id: int) -> tuple[Message, Conversation, ContactChat, Inbox] | None:
        async with self._factory() as db:
            row = (
                await db.execute(
                    select(Message, Conversation, ContactChat, Inbox)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    # the contact's chat with the conversation's own inbox: a reply never leaves
                    # through another channel, nor another bot's dialog
                    .join(
                        ContactChat,
                        (ContactChat.identity_id == Conversation.identity_id)
                        & (ContactChat.inbox_id == Conversation.inbox_id),
                    )
                    .join(Inbox, Inbox.id == Conversation.inbox_id)
                    .where(Message.id == message_id, Message.direction == MessageDirection.OUT)
                )
            ).first()
        return tuple(row) if row is not None else None  # type: ignore[return-value]

    async def _reserve_slot(self, adapter: Sending, inbox: Inbox, chat_id: str) -> datetime:
        limits = send_limits(adapter, inbox, chat_id)
        if not limits:
            return datetime.now(UTC)
        async with self._factory() as db, db.begin():
            return await reserve(db, limits)

    async def _attachments(self, message_id: int) -> list[OutboundAttachment]:
        async with self._factory() as db:
            rows = (
                await db.scalars(
                    select(Attachment)
                    .where(Attachment.message_id == message_id, Attachment.sha256.is_not(None))
                    .order_by(Attachment.id)  # the plan's steps, so a retry skips the parts already sent
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
            # a widget visitor's browser may have reported the reply received or read already:
            # it got the reply through the hub when it was written, before this send
            status = await db.scalar(
                update(Message)
                .where(Message.id == message.id)
                .values(
                    delivery_status=case(
                        (Message.read_at.is_not(None), _status(DeliveryStatus.READ)),
                        (Message.delivered_at.is_not(None), _status(DeliveryStatus.DELIVERED)),
                        else_=_status(DeliveryStatus.SENT),
                    ),
                    sent_at=now,
                    sent_provider_ids=sent,
                    error=None,
                    error_class=None,
                )
                .returning(Message.delivery_status)
            )
            if message.sender_kind in (SenderKind.OPERATOR, SenderKind.INTEGRATION):
                # only a person's answer (in the cabinet or through the API) makes it "answered"
                await db.execute(
                    update(Conversation).where(Conversation.id == message.conversation_id).values(last_out_at=now)
                )
            await _status_changed(db, message, status or DeliveryStatus.SENT)

    async def _failed_attempt(
        self,
        message: Message,
        chat: ContactChat,
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
                    update(ContactChat)
                    .where(ContactChat.identity_id == chat.identity_id, ContactChat.inbox_id == chat.inbox_id)
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
            await self._mark_unreachable(chat, message.conversation_id, exc.reason)
        return await self._fail(message, ErrorClass.PERMANENT, exc.reason, code)

    async def _mark_unreachable(self, chat: ContactChat, conversation_id: int, reason: str) -> None:
        """Unreachable through this inbox's bot only: the contact's other dialogs are untouched."""
        async with self._factory() as db, db.begin():
            await db.execute(
                update(ContactChat)
                .where(ContactChat.identity_id == chat.identity_id, ContactChat.inbox_id == chat.inbox_id)
                .values(reachable=False, unreachable_reason=reason)
            )
            audit.record(
                db,
                "contact.unreachable",
                conversation_id=conversation_id,
                details={"identity_id": chat.identity_id, "inbox_id": chat.inbox_id, "reason": reason},
            )
            ref = await load_conversation_ids(db, conversation_id)
            await publish(db, ContactReachabilityChanged.of(ref, identity_id=chat.identity_id, reachable=False))

    async def _fail(self, message: Message, error_class: ErrorClass, reason: str, code: str | None) -> SendOutcome:
        async with self._factory() as db, db.begin():
            changed = await db.execute(
                update(Message)
                .where(Message.id == message.id, Message.delivery_status.in_(PENDING))  # never un-sends
                .values(delivery_status=DeliveryStatus.FAILED, error_class=error_class, error=reason)
            )
            if changed.rowcount:
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
        return [self.prepare_delivery, self.send_message, self.fail_delivery, self.fail_stuck_deliveries]


def send_limits(adapter: Sending, inbox: Inbox, chat_id: str) -> dict[str, Limit]:
    """{rate key: limit} for a send through this inbox's bot to this chat: every sender (replies,
    staff notifications) takes its slots on the same keys, so together they stay in the limits."""
    limits = {}
    if adapter.rate_per_bot > 0:
        limits[f"{inbox.channel.value}:{inbox.id}"] = Limit.per_second(adapter.rate_per_bot)
    if adapter.rate_per_chat > 0:
        limits[f"{inbox.channel.value}:{inbox.id}:{chat_id}"] = Limit.per_second(adapter.rate_per_chat)
    return limits


def _delivery_pending(message_id: Any) -> Any:
    """The outbox row that will start (or restart) delivery-{message_id}."""
    return select(OutboxEvent.id).where(
        OutboxEvent.kind == DELIVER, OutboxEvent.payload["message_id"].as_integer() == message_id
    )


class _SlotFarOff(DeliveryError):
    """A later part's rate slot is further off than MAX_SLOT_WAIT."""

    error_class = ErrorClass.RATE_LIMITED

    def __init__(self, slot: datetime, wait: float) -> None:
        super().__init__("our own rate limit")
        self.slot, self.wait = slot, wait


class _Pacer:
    """Awaited before each part of a message: the first waits for the slot reserved before the
    send began, each later one reserves its own (the provider counts every part against the chat
    and the bot). Keeps the time spent waiting, which is not the provider's latency."""

    def __init__(self, first: datetime, reserve: Callable[[], Awaitable[datetime]]) -> None:
        self._next: datetime | None = first
        self._reserve = reserve
        self.waited = 0.0

    async def __call__(self) -> None:
        slot = self._next or await self._reserve()
        self._next = None
        wait = (slot - datetime.now(UTC)).total_seconds()
        if wait > MAX_SLOT_WAIT:
            raise _SlotFarOff(slot, wait)
        if wait > 0:
            began = time.monotonic()
            await asyncio.sleep(wait)
            self.waited += time.monotonic() - began
