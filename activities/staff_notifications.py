"""The activity of StaffNotifierWorkflow: read the customer messages announced since the rule's
cursor, keep those the rule wants, and send them as one Telegram message (coalesced: "3 new
messages in 2 conversations"), within the chat's and the bot's send limits shared with replies.

Nothing here is on the inbound path: it reads the realtime log after the fact. A message that
cannot be sent is logged and counted, and the cursor moves on; a notification is worth nothing
an hour late, so nothing retries it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.delivery import send_limits
from activities.heartbeats import heartbeating
from channels.base import ChannelAdapter, Sending
from domain.contracts import DeliveryError, OutboundMessage
from domain.enums import ChannelKind
from domain.events import MessageCreated
from domain.links import conversation_url
from domain.staff_notifications import NOTIFY_STAFF, Mode, NotifyOutcome, NotifyRequest, summary, wanted
from infra import metrics
from infra.event_log import Wakeups
from infra.models import Inbox, StaffNotificationRule
from infra.ratelimit import reserve
from infra.security import CredentialBox
from infra.settings import Settings

log = logging.getLogger(__name__)

COALESCE_SECONDS = 1.0  # after the first message of a burst, wait this long for the rest
# a conversation not routed yet (no branch) holds the cursor this long, then is passed over
ROUTING_GRACE = timedelta(seconds=10)
BATCH = 1000

# A message is judged as it was when it came (branch and assignee from the event), or, when it
# came before its conversation was routed or assigned, as the conversation is now.
_CUSTOMER_MESSAGES = text(f"""
    SELECT e.id, e.created_at, c.id AS conversation_id, ct.display_name,
           COALESCE((e.payload->>'branch_id')::bigint, c.branch_id) AS branch_id,
           COALESCE((e.payload->>'assignee_id')::bigint, c.assignee_id) AS assignee_id,
           NOT EXISTS (SELECT 1 FROM messages m
                       WHERE m.conversation_id = c.id AND m.direction = 'in'
                         AND m.id < (e.payload->>'message_id')::bigint) AS first
    FROM realtime_events e
    JOIN conversations c ON c.id = (e.payload->>'conversation_id')::bigint
    JOIN contacts ct ON ct.id = c.contact_id
    WHERE e.id > :cursor AND e.type = '{MessageCreated.NAME}'
      AND e.payload->>'direction' = 'in' AND e.payload->>'sender_kind' = 'contact'
    ORDER BY e.id
    LIMIT {BATCH}
""")


class StaffNotificationActivities:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        adapters: dict[ChannelKind, ChannelAdapter],
        box: CredentialBox,
        settings: Settings,
        wakeups: Wakeups,
    ) -> None:
        self._factory = factory
        self._adapters = adapters
        self._box = box
        self._settings = settings
        self._wakeups = wakeups

    @activity.defn(name=NOTIFY_STAFF)
    async def notify_staff(self, request: NotifyRequest) -> NotifyOutcome:
        began = time.monotonic()
        outcome = NotifyOutcome()
        async with heartbeating(5.0):
            while True:
                found = await self._round(request.rule_id, outcome)
                if found is None:
                    return NotifyOutcome(gone=True)
                left = request.watch_seconds - (time.monotonic() - began)
                if left <= 0:
                    return outcome
                if await self._wakeups.wait(left):
                    await asyncio.sleep(COALESCE_SECONDS)

    async def _round(self, rule_id: int, outcome: NotifyOutcome) -> bool | None:
        """Notify of what came since the cursor; None when the rule is gone."""
        async with self._factory() as db:
            rule = await db.get(StaffNotificationRule, rule_id)
            if rule is None:
                return None
            rows = (await db.execute(_CUSTOMER_MESSAGES, {"cursor": rule.cursor})).all()
            inbox = await db.get(Inbox, rule.bot_inbox_id)
        if not rows:
            return False
        now = datetime.now(UTC)
        cursor, picked = rule.cursor, []
        for row in rows:
            if row.branch_id is None and now - row.created_at < ROUTING_GRACE:
                break  # its branch is being chosen: look again next round
            cursor = row.id
            if row.branch_id == rule.branch_id and wanted(
                Mode(rule.mode), first=row.first, assignee_id=row.assignee_id, operator_id=rule.operator_id
            ):
                picked.append(row)
        sent = failed = 0
        error = None
        if picked and inbox is not None:
            error = await self._send(inbox, rule.chat_id, self._text(picked))
            sent, failed = (0, 1) if error else (1, 0)
            metrics.STAFF_NOTIFICATIONS.labels(outcome="failed" if error else "sent").inc()
            outcome.sent += sent
            outcome.failed += failed
        await self._advance(rule.id, cursor, sent=sent, failed=failed, error=error)
        return bool(picked)

    def _text(self, rows: list[Any]) -> str:
        conversations: dict[int, tuple[int, str, str]] = {}
        for row in reversed(rows):  # newest first
            conversations.setdefault(
                row.conversation_id,
                (
                    row.conversation_id,
                    row.display_name,
                    conversation_url(self._settings.public_url, row.conversation_id),
                ),
            )
        return summary(len(rows), list(conversations.values()))

    async def _send(self, inbox: Inbox, chat_id: str, body: str) -> str | None:
        """None when sent, else why not (logged)."""
        adapter = self._adapters.get(inbox.channel)
        if not isinstance(adapter, Sending):
            return f"{inbox.channel.value} cannot send"
        await self._wait_for_slot(adapter, inbox, chat_id)
        # not a conversation's message: ids 0, the adapter only needs the chat and the text
        message = OutboundMessage(
            message_id=0,
            conversation_id=0,
            inbox_id=inbox.id,
            channel=inbox.channel,
            provider_chat_id=chat_id,
            text=body,
        )
        try:
            await adapter.send(self._box.open(inbox.credentials_encrypted), message)
        except DeliveryError as exc:
            log.warning("staff notification to chat %s of inbox %s failed: %s", chat_id, inbox.id, exc.reason)
            return exc.reason[:500]
        return None

    async def _wait_for_slot(self, adapter: Sending, inbox: Inbox, chat_id: str) -> None:
        """The same per-bot and per-chat rate keys as replies (activities/delivery.py), so both
        together stay within Telegram's limits."""
        limits = send_limits(adapter, inbox, chat_id)
        if not limits:
            return
        async with self._factory() as db, db.begin():
            slot = await reserve(db, limits)
        await asyncio.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))

    async def _advance(self, rule_id: int, cursor: int, *, sent: int, failed: int, error: str | None) -> None:
        values: dict[str, Any] = {
            "cursor": cursor,
            "sent": StaffNotificationRule.sent + sent,
            "failed": StaffNotificationRule.failed + failed,
        }
        if error is not None or sent:
            values["last_error"] = error
        async with self._factory() as db, db.begin():
            await db.execute(update(StaffNotificationRule).where(StaffNotificationRule.id == rule_id).values(**values))

    def all(self) -> list[Any]:
        return [self.notify_staff]
