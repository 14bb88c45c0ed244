"""Activities that talk to the channels outside a delivery: long polling, webhook upkeep and
downloading what customers sent.

Each is safe to run again: polling stores its cursor only after the batch's ingests committed
(a retry re-fetches and ingest drops the repeats), webhook checks only converge the provider to
the inbox row, and a file already stored is skipped. No token or secret reaches a log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from channels.base import ChannelAdapter, Files, MalformedUpdate, Polling, Webhook
from domain.contracts import DeliveryError, InboundEvent, PermanentError, ProviderFileRef, RateLimitedError
from domain.events import MessageChange, MessageUpdated
from domain.files import FETCH_ATTACHMENTS, FetchAttachmentsInput, FetchReport
from domain.polling import POLL_INBOX, PollOutcome, PollRequest
from domain.webhook_check import CHECK_WEBHOOKS, WebhookCheckReport
from infra import metrics
from infra.event_log import load_conversation_ids, publish
from infra.files import FileStore
from infra.models import Attachment, Inbox, Message
from infra.security import CredentialBox
from infra.settings import Settings
from services.button_answers import ButtonAnswers
from services.ingest import database_away, ingest

log = logging.getLogger(__name__)
T = TypeVar("T")

# What a provider answers to long polling while a webhook is set: Telegram 409 Conflict,
# MAX 405 method.not.allowed.
_POLL_CONFLICTS = frozenset({409, 405, "method.not.allowed"})
NO_FILE_KINDS = frozenset({"location", "contact"})
OCTET_STREAM = "application/octet-stream"


class ChannelActivities:
    # attempts of one poll before an update whose ingest keeps failing (for any reason but the
    # database being away) is skipped
    poison_after_attempts = 3
    # seconds at least between the start of a poll that came back empty and the next one: a
    # server (or a proxy before it) that answers a long poll at once must not be asked 20 times
    # a second; a poll that returns updates is followed at once
    empty_poll_floor = 1.0

    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        adapters: Mapping[Any, ChannelAdapter],
        box: CredentialBox,
        settings: Settings,
        *,
        store: FileStore | None = None,
    ) -> None:
        self._factory = factory
        self._adapters = adapters
        self._box = box
        self._settings = settings
        self._store = store or FileStore.from_settings(settings)
        self._answers = ButtonAnswers()

    def all(self) -> list:
        return [self.poll_inbox, self.check_webhooks, self.fetch_attachments]

    # -- long polling -----------------------------------------------------------------------

    @activity.defn(name=POLL_INBOX)
    async def poll_inbox(self, request: PollRequest) -> PollOutcome:
        inbox_id = request.inbox_id
        loaded = await self._polling_inbox(inbox_id)
        if isinstance(loaded, PollOutcome):
            return loaded
        adapter, credentials, cursor = loaded
        began = time.monotonic()
        try:
            updates, new_cursor = await self._long_poll(adapter, credentials, cursor, request)
        except PermanentError as err:
            if err.provider_code not in _POLL_CONFLICTS or not isinstance(adapter, Webhook):
                await self._note_error(inbox_id, f"polling failed: {err.reason}")
                raise _retry_later(err, timedelta(minutes=1)) from None
            # A webhook is set at the provider. Ours only if the inbox switched to webhook mode
            # meanwhile (then stop); otherwise a leftover one that polling must remove.
            loaded = await self._polling_inbox(inbox_id)
            if isinstance(loaded, PollOutcome):
                return loaded
            log.info("inbox %s: the provider has a webhook set; removing it to poll", inbox_id)
            await self._provider_call(adapter.unregister_webhook(credentials, None))
            updates, new_cursor = await self._provider_call(self._long_poll(adapter, credentials, cursor, request))
        except DeliveryError as err:
            raise _retry_later(err) from None

        events = skipped = 0
        for raw in updates:
            activity.heartbeat()
            try:
                parsed = adapter.parse_update(inbox_id, raw)
            except MalformedUpdate as exc:
                # one bad update must not stop the inbox: skip it (its cursor moves on)
                log.warning("inbox %s: skipping an update that does not parse: %s", inbox_id, exc)
                metrics.SKIPPED_UPDATES.labels(channel=adapter.kind.value).inc()
                skipped += 1
                continue
            for event in parsed:
                if await self._ingest(event, adapter, credentials):
                    events += 1
                else:
                    skipped += 1
        # Only now, with every ingest committed, is the batch acknowledged: the next poll
        # passes this cursor to the provider. A crash before this line re-fetches the batch.
        await self._save_cursor(inbox_id, cursor, new_cursor)
        if not updates:
            await self._empty_poll_floor(began, request)
        return PollOutcome(keep_polling=True, updates=len(updates), events=events, skipped=skipped)

    async def _ingest(self, event: InboundEvent, adapter: Polling, credentials: dict[str, Any]) -> bool:
        """True when stored (or stored already). An event whose ingest keeps failing for any
        reason but the database being away (data it refuses, a bug) is tried again with its
        batch a few times, then skipped and logged, so one update cannot stop the inbox for good."""
        try:
            result = await ingest(self._factory, event)
        except Exception as exc:
            attempt = activity.info().attempt
            if attempt < self.poison_after_attempts or database_away(exc):
                raise
            log.exception(
                "inbox %s: skipping update %s that cannot be stored (tried %d times)",
                event.inbox_id,
                event.provider_message_id,
                attempt,
            )
            metrics.SKIPPED_UPDATES.labels(channel=event.channel.value).inc()
            return False
        if not result.duplicate:
            self._answers.answer(adapter, credentials, event)
        return True

    async def _empty_poll_floor(self, began: float, request: PollRequest) -> None:
        wait = self.empty_poll_floor - (time.monotonic() - began)
        if wait > 0:
            await _heartbeating(asyncio.sleep(wait), request.heartbeat_every)

    async def _polling_inbox(self, inbox_id: int) -> PollOutcome | tuple[Polling, dict[str, Any], str | None]:
        async with self._factory() as db:
            inbox = await db.get(Inbox, inbox_id)
        if inbox is None:
            return PollOutcome(keep_polling=False, stop_reason="inbox deleted")
        if not inbox.is_active:
            return PollOutcome(keep_polling=False, stop_reason="inbox deactivated")
        if inbox.webhook_url is not None:
            return PollOutcome(keep_polling=False, stop_reason="inbox switched to webhook mode")
        adapter = self._adapters.get(inbox.channel)
        if not isinstance(adapter, Polling):
            return PollOutcome(keep_polling=False, stop_reason=f"{inbox.channel.value} cannot poll")
        credentials = self._box.open(inbox.credentials_encrypted)
        if not credentials.get("token"):
            return PollOutcome(keep_polling=False, stop_reason="inbox has no bot token")
        return adapter, credentials, inbox.poll_cursor

    async def _long_poll(
        self, adapter: Polling, credentials: dict[str, Any], cursor: str | None, request: PollRequest
    ) -> tuple[list[dict[str, Any]], Any]:
        return await _heartbeating(adapter.poll(credentials, cursor, request.timeout), request.heartbeat_every)

    async def _save_cursor(self, inbox_id: int, old: str | None, new: Any) -> None:
        new_value = None if new is None else str(new)
        async with self._factory() as db, db.begin():
            if new_value != old:
                # compare-and-set: a stale attempt (a worker presumed dead) never moves it back
                await db.execute(
                    update(Inbox)
                    .where(Inbox.id == inbox_id, Inbox.poll_cursor.is_not_distinct_from(old))
                    .values(poll_cursor=new_value)
                )
            await db.execute(
                update(Inbox)
                .where(Inbox.id == inbox_id, Inbox.webhook_url.is_(None), Inbox.webhook_error.is_not(None))
                .values(webhook_error=None)
            )

    async def _note_error(self, inbox_id: int, message: str) -> None:
        async with self._factory() as db, db.begin():
            await db.execute(update(Inbox).where(Inbox.id == inbox_id).values(webhook_error=message[:2000]))

    async def _provider_call(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except DeliveryError as err:
            raise _retry_later(err) from None

    # -- webhook upkeep ---------------------------------------------------------------------

    @activity.defn(name=CHECK_WEBHOOKS)
    async def check_webhooks(self) -> WebhookCheckReport:
        async with self._factory() as db:
            inboxes = (
                await db.execute(
                    select(Inbox.id, Inbox.channel, Inbox.webhook_url, Inbox.credentials_encrypted)
                    .where(Inbox.is_active, Inbox.webhook_url.is_not(None))
                    .order_by(Inbox.id)
                )
            ).all()
        report = WebhookCheckReport()
        for row in inboxes:
            adapter = self._adapters.get(row.channel)
            if not isinstance(adapter, Webhook):
                continue
            activity.heartbeat(row.id)
            report.checked += 1
            error, resubscribed = await self._check_one(adapter, row)
            report.resubscribed += resubscribed
            report.errors += error is not None
            async with self._factory() as db, db.begin():
                # only if the inbox is still in the mode and at the URL that was checked
                await db.execute(
                    update(Inbox)
                    .where(Inbox.id == row.id, Inbox.webhook_url == row.webhook_url)
                    .values(webhook_error=error, webhook_checked_at=datetime.now(UTC))
                )
        return report

    async def _check_one(self, adapter: Webhook, row: Any) -> tuple[str | None, bool]:
        """(the error to show on the inbox or None, whether it was subscribed again)."""
        try:
            credentials = self._box.open(row.credentials_encrypted)
            status = await adapter.webhook_status(credentials, row.webhook_url)
            if status["active"]:
                return status["last_error_message"], False
            # MAX drops a subscription after 8 h of failed deliveries; someone may have
            # deleted Telegram's: either way, subscribe again with the inbox's own secret.
            await adapter.register_webhook(credentials, row.webhook_url, credentials["webhook_secret"])
            log.info("inbox %s: webhook was gone at the provider; registered again", row.id)
            return status["last_error_message"], True
        except DeliveryError as err:
            log.warning("inbox %s: webhook check failed: %s", row.id, err.reason)
            return f"webhook check failed: {err.reason}", False
        except (KeyError, ValueError) as err:  # no secret, credentials that do not decrypt
            log.warning("inbox %s: webhook check impossible: %s", row.id, type(err).__name__)
            return "webhook check impossible: the inbox credentials are incomplete", False

    # -- incoming files -----------------------------------------------------------------------

    @activity.defn(name=FETCH_ATTACHMENTS)
    async def fetch_attachments(self, params: FetchAttachmentsInput) -> FetchReport:
        # 0 would mean "retry forever" to Temporal: then no attempt is the last
        last_attempt = 0 < params.max_attempts <= activity.info().attempt
        async with self._factory() as db:
            row = (
                await db.execute(
                    select(Message.conversation_id, Inbox.channel, Inbox.credentials_encrypted)
                    .join(Inbox, Inbox.id == Message.inbox_id)
                    .where(Message.id == params.message_id)
                )
            ).first()
            attachments = (
                await db.scalars(
                    select(Attachment).where(Attachment.message_id == params.message_id).order_by(Attachment.id)
                )
            ).all()
        report = FetchReport()
        if row is None:
            return report  # the message was deleted meanwhile: nothing to keep
        adapter = self._adapters.get(row.channel)
        credentials = self._box.open(row.credentials_encrypted)
        retry: DeliveryError | None = None
        for att in attachments:
            ref = _file_ref(att)
            if (
                att.stored_at is not None
                or att.fetch_error is not None
                or ref is None
                or not isinstance(adapter, Files)
            ):
                report.skipped += 1
                continue
            activity.heartbeat(att.id)
            try:
                content, mime, name = await adapter.fetch_file(credentials, ref, self._settings.attachment_max_bytes)
            except PermanentError as err:
                await self._fetch_failed(att.id, err.reason)
                report.failed += 1
                continue
            except DeliveryError as err:
                if last_attempt:
                    await self._fetch_failed(att.id, f"gave up after {params.max_attempts} attempts: {err.reason}")
                    report.failed += 1
                else:
                    retry = retry or err  # fetch the others first, then retry this one
                continue
            stored = await asyncio.to_thread(self._store.put, content)
            await self._stored(att, stored.sha256, stored.size, mime, name)
            report.stored += 1
        if report.stored or report.failed:
            async with self._factory() as db, db.begin():
                ref = await load_conversation_ids(db, row.conversation_id)
                await publish(
                    db, MessageUpdated.of(ref, message_id=params.message_id, change=MessageChange.ATTACHMENTS)
                )
        if retry is not None:
            raise _retry_later(retry)
        return report

    async def _stored(self, att: Attachment, sha256: str, size: int, mime: str | None, name: str | None) -> None:
        values: dict[str, Any] = {"sha256": sha256, "size": size, "stored_at": datetime.now(UTC), "fetch_error": None}
        if mime and (not att.mime_type or att.mime_type == OCTET_STREAM):
            values["mime_type"] = mime[:200]
        if name and not att.file_name:
            values["file_name"] = name[:300]
        async with self._factory() as db, db.begin():
            await db.execute(
                update(Attachment).where(Attachment.id == att.id, Attachment.stored_at.is_(None)).values(**values)
            )

    async def _fetch_failed(self, attachment_id: int, reason: str) -> None:
        log.info("attachment %s not fetched: %s", attachment_id, reason)
        async with self._factory() as db, db.begin():
            await db.execute(
                update(Attachment)
                .where(Attachment.id == attachment_id, Attachment.stored_at.is_(None))
                .values(fetch_error=reason[:2000])
            )


def _file_ref(att: Attachment) -> ProviderFileRef | None:
    """The provider's reference when there is a file to download (not a location or contact)."""
    if att.kind in NO_FILE_KINDS or not att.provider_ref:
        return None
    try:
        ref = ProviderFileRef(**att.provider_ref)
    except ValueError:
        return None
    return ref if (ref.file_id or ref.url) else None


def _retry_later(err: DeliveryError, delay: timedelta | None = None) -> ApplicationError:
    """A retryable activity failure; a provider's rate limit sets when the retry comes."""
    if isinstance(err, RateLimitedError):
        delay = timedelta(seconds=max(err.retry_after, 1))
    return ApplicationError(err.reason, type=type(err).__name__, next_retry_delay=delay)


async def _heartbeating(call: Awaitable[T], every: float) -> T:
    """Await a long call, heartbeating meanwhile so a dead worker is noticed within the
    heartbeat timeout (and a cancellation reaches us)."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=every)
            if done:
                return task.result()
            activity.heartbeat()
    finally:
        if not task.done():
            task.cancel()
