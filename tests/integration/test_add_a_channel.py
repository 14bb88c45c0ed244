"""Adding a channel is one adapter package plus one line in channels.registry.ADAPTERS: a minimal
send-only adapter registered here carries a reply through the whole delivery path (reply queued
-> outbox -> DeliveryWorkflow -> send activity -> the adapter -> message sent), with no other
code knowing about it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

import pytest
from sqlalchemy import select

from channels.base import Credentials, Sending
from channels.plan import Step
from channels.registry import ADAPTERS
from domain.contracts import ContactProfile, InboundEvent, InboundKind, OutboundMessage
from domain.enums import ChannelKind, DeliveryStatus, OperatorRole
from infra.models import Inbox, Message, Operator
from infra.security import CredentialBox
from services.conversations import send_reply, take
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.conftest import wait_until


class PigeonAdapter(Sending):
    """Sending only: no webhook, no polling, no files, and nothing stubbed for them."""

    kind = ChannelKind.VK
    text_limit = caption_limit = 500
    sent: ClassVar[list[tuple[str, str | None]]] = []

    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        self.sent.append((msg.provider_chat_id, step.text))
        return f"pigeon-{len(self.sent)}"

    async def send_typing(self, credentials: Credentials, chat_id: str) -> None: ...

    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None: ...


@pytest.fixture
def pigeon(monkeypatch) -> type[PigeonAdapter]:
    """Registered before the worker is built, as a deploy with the new registry line would be."""
    PigeonAdapter.sent = []
    monkeypatch.setitem(ADAPTERS, ChannelKind.VK, PigeonAdapter)  # the one registry line
    return PigeonAdapter


async def test_a_channel_registered_in_one_line_delivers_a_reply(pigeon, world, engine_stack):
    async with world.factory() as db, db.begin():
        inbox = Inbox(
            name="Pigeon post",
            channel=ChannelKind.VK,
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal({"token": "coop-key"}),
        )
        db.add(inbox)
        await db.flush()
        inbox_id = inbox.id
    received = await ingest(
        world.factory,
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.VK,
            kind=InboundKind.MESSAGE,
            provider_user_id="coop-7",
            provider_chat_id="coop-7",
            provider_message_id="p-1",
            provider_time=datetime.now(UTC),
            text="coo?",
            profile=ContactProfile(display_name="Pidge"),
        ),
    )
    supervisor = await world.operator(role=OperatorRole.SUPERVISOR)
    async with world.factory() as db, db.begin():
        await take(db, await db.get(Operator, supervisor), received.conversation_id)
        message_id, _ = await send_reply(
            db,
            await db.get(Operator, supervisor),
            received.conversation_id,
            "Your parcel flies today",
            idempotency_key="pigeon-1",
        )

    async def sent() -> bool:
        async with world.factory() as db:
            return (
                await db.scalar(select(Message.delivery_status).where(Message.id == message_id)) == DeliveryStatus.SENT
            )

    await wait_until(sent)
    assert pigeon.sent == [("coop-7", "Your parcel flies today")]
    async with world.factory() as db:
        assert (await db.get(Message, message_id)).sent_provider_ids == ["pigeon-1"]
