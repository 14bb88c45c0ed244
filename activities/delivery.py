"""Activities of DeliveryWorkflow."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.enums import DeliveryStatus, SenderKind
from infra.models import Conversation, Message
from infra.realtime import publish


class DeliveryActivities:
    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    @activity.defn(name="send_message")
    async def send_message(self, message_id: int) -> str:
        # Interim: marks the message sent without calling a provider. The channel adapters
        # replace this behind the same workflow and activity name.
        async with self._factory() as db, db.begin():
            message = await db.get(Message, message_id, with_for_update=True)
            if message is None:
                return "missing"
            if message.delivery_status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
                message.delivery_status = DeliveryStatus.SENT
                message.sent_at = datetime.now(UTC)
                if message.sender_kind == SenderKind.OPERATOR:
                    # only an operator's answer makes a conversation "answered"
                    await db.execute(
                        update(Conversation)
                        .where(Conversation.id == message.conversation_id)
                        .values(last_out_at=message.sent_at)
                    )
                await publish(db, "message.status", conversation_id=message.conversation_id,
                              message_id=message.id, status=DeliveryStatus.SENT.value)
            return message.delivery_status.value

    def all(self) -> list:
        return [self.send_message]


