"""The API channel's adapter. Inbound: what the integrator posts (parse.py), through the same
ingest as every channel. Outbound: a reply needs no provider call; it reaches the integrator as
the `message.created` event of its webhook subscription, which the realtime log queued when the
reply was written. So "sending" hands the reply over (status sent); the integrator tells us when
its customer has it or read it (delivered, read) through the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from channels.api.parse import TEXT_MAX, parse_update
from channels.base import Credentials, Inbound, Sending
from channels.plan import Step
from domain.contracts import InboundEvent, OutboundMessage
from domain.enums import ChannelKind


class ApiChannelAdapter(Sending, Inbound):
    kind = ChannelKind.API
    text_limit = TEXT_MAX
    caption_limit = TEXT_MAX

    def parse_update(self, inbox_id: int, payload: Any, *, received_at: datetime | None = None) -> list[InboundEvent]:
        return parse_update(inbox_id, payload, received_at=received_at)

    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        # no provider id exists: ours names the part, so a retry's skip count still lines up
        return f"{msg.message_id}" if step.attachment is None else f"{msg.message_id}:{step.attachment.attachment_id}"

    @staticmethod
    def token(credentials: Credentials) -> str:
        return ""  # the integrator authenticates to us; we call nothing of theirs here

    async def send_typing(self, credentials: Credentials, chat_id: str) -> None:
        """Typing is not part of the API channel's events."""

    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None:
        """The API channel has no buttons to acknowledge."""
