"""Creating inboxes and connecting them to their provider: a webhook when we have a public
HTTPS address, long polling otherwise (the default on a machine nobody can reach).

Telegram's getUpdates and a webhook exclude each other, and MAX turns polling off while a
subscription exists: polling mode removes the webhook first.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import ChannelAdapter, Polling, Webhook
from domain.contracts import DeliveryError
from domain.enums import ChannelKind
from domain.polling import DEFAULT_POLL_TIMEOUT
from infra.models import Inbox
from infra.security import CredentialBox
from infra.temporal import WorkflowStarter

log = logging.getLogger(__name__)

# 32 random bytes as URL-safe base64: 43 characters of [A-Za-z0-9_-], valid for Telegram
# (1-256 characters) and MAX (5-256) alike.
SECRET_BYTES = 32


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def webhook_url_for(public_url: str, channel: ChannelKind | str, inbox_id: int) -> str:
    return f"{public_url.rstrip('/')}/webhooks/{ChannelKind(channel).value}/{inbox_id}"


async def create_inbox(
    db: AsyncSession,
    box: CredentialBox,
    *,
    name: str,
    channel: ChannelKind | str,
    token: str,
    settings: dict[str, Any] | None = None,
) -> Inbox:
    """A new inbox with its bot token and a fresh webhook secret, both sealed. Flushed, not
    committed: the caller's transaction decides. Connect it with `connect_inbox`."""
    channel = ChannelKind(channel)
    token = (token or "").strip()
    if not token:
        raise ValueError("a bot token is required")
    if not name.strip():
        raise ValueError("an inbox needs a name")
    inbox = Inbox(
        name=name.strip(),
        channel=channel,
        settings=dict(settings or {}),
        credentials_encrypted=box.seal({"token": token, "webhook_secret": new_webhook_secret()}),
    )
    db.add(inbox)
    await db.flush()
    return inbox


@dataclass(frozen=True)
class Connection:
    mode: Literal["webhook", "polling"]
    webhook_url: str | None = None
    poller_workflow_id: str | None = None


async def connect_inbox(
    factory: async_sessionmaker[AsyncSession],
    adapters: Mapping[ChannelKind, ChannelAdapter],
    box: CredentialBox,
    starter: WorkflowStarter,
    inbox_id: int,
    public_url: str | None,
    *,
    poll_timeout: int = DEFAULT_POLL_TIMEOUT,
) -> Connection:
    """Webhook mode for an https `public_url` (when the channel takes webhooks), long polling
    otherwise. Idempotent: connecting again in the same mode registers the same URL and finds
    the running poller.

    Provider errors (DeliveryError) propagate to the caller after being kept in
    `inboxes.webhook_error`, so an admin sees why the inbox does not receive."""
    async with factory() as db, db.begin():
        inbox = await db.get(Inbox, inbox_id, with_for_update=True)
        if inbox is None:
            raise LookupError(f"inbox {inbox_id} does not exist")
        if not inbox.is_active:
            raise ValueError(f"inbox {inbox_id} is not active")
        adapter = adapters.get(inbox.channel)
        webhook = isinstance(adapter, Webhook) and bool(public_url) and public_url.lower().startswith("https://")
        if not (webhook or isinstance(adapter, Polling)):
            raise ValueError(
                f"{inbox.channel.value} inboxes cannot be connected"
                + (" without a public https URL" if isinstance(adapter, Webhook) else "")
            )
        credentials = box.open(inbox.credentials_encrypted)
        if not credentials.get("webhook_secret"):  # an inbox made before secrets were generated
            credentials["webhook_secret"] = new_webhook_secret()
            inbox.credentials_encrypted = box.seal(credentials)
        previous = inbox.webhook_url
        # The mode is written before the provider is told, so a poller that is mid-poll sees
        # webhook mode at its next round (or after the provider's conflict answer) and stops.
        inbox.webhook_url = webhook_url_for(public_url, inbox.channel, inbox_id) if webhook else None
        inbox.webhook_error = None
        url, channel = inbox.webhook_url, inbox.channel

    try:
        if url is not None:
            if previous and previous != url:
                await adapter.unregister_webhook(credentials, previous)  # MAX keeps one per URL
            await adapter.register_webhook(credentials, url, credentials["webhook_secret"])
        elif isinstance(adapter, Webhook):
            await adapter.unregister_webhook(credentials, None)  # every URL: polling needs none
    except DeliveryError as exc:
        await _set_error(factory, inbox_id, f"{'registering' if url else 'removing'} the webhook failed: {exc.reason}")
        raise
    if url is not None:
        log.info("inbox %s (%s) receives by webhook", inbox_id, channel.value)
        return Connection("webhook", webhook_url=url)
    workflow_id = await starter.start_poller(inbox_id, poll_timeout=poll_timeout)
    log.info("inbox %s (%s) receives by long polling", inbox_id, channel.value)
    return Connection("polling", poller_workflow_id=workflow_id)


async def ensure_pollers(
    factory: async_sessionmaker[AsyncSession], polling_channels: Collection[ChannelKind], starter: WorkflowStarter
) -> list[int]:
    """At worker boot: every active inbox in polling mode whose channel can poll has its
    poller running. Harmless when they run already; returns the inbox ids."""
    async with factory() as db:
        rows = (
            await db.execute(
                select(Inbox.id, Inbox.channel).where(
                    Inbox.is_active, Inbox.webhook_url.is_(None), Inbox.credentials_encrypted.is_not(None)
                )
            )
        ).all()
    started = []
    for inbox_id, channel in rows:
        if channel in polling_channels:
            await starter.start_poller(inbox_id)
            started.append(inbox_id)
    return started


async def _set_error(factory: async_sessionmaker[AsyncSession], inbox_id: int, message: str) -> None:
    async with factory() as db, db.begin():
        await db.execute(update(Inbox).where(Inbox.id == inbox_id).values(webhook_error=message[:2000]))


async def list_inboxes(db: AsyncSession) -> list[Inbox]:
    """Every inbox, as integrators and settings list them (credentials stay sealed in the row)."""
    return list((await db.scalars(select(Inbox).order_by(Inbox.id))).all())
