"""The widget's adapter: Sending only. What a visitor writes comes in through web/widget and
services/widget_chat.py into the one ingest path. A reply needs no provider call: it is already
a message row, whose `message.created` event the realtime hub handed to the visitor's stream (or
poll) when it was written; "sending" marks it sent. The visitor's browser reports when it got a
reply and when it was shown (delivered, read) through the widget's API."""

from __future__ import annotations

from typing import ClassVar

from channels.base import Credentials, Sending
from channels.plan import Step
from domain.contracts import OutboundMessage
from domain.enums import ChannelKind

TEXT_MAX = 10_000


class WidgetAdapter(Sending):
    kind: ClassVar[ChannelKind] = ChannelKind.WIDGET
    text_limit = TEXT_MAX
    caption_limit = TEXT_MAX

    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        # no provider id exists: ours names the part, so a retry's skip count still lines up
        return f"{msg.message_id}" if step.attachment is None else f"{msg.message_id}:{step.attachment.attachment_id}"

    @staticmethod
    def token(credentials: Credentials) -> str:
        return ""  # the visitor's browser comes to us; there is nobody to call

    async def send_typing(self, credentials: Credentials, chat_id: str) -> None:
        """The visitor sees typing as the hub's `operator.typing` event."""

    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None:
        """The widget has no buttons to acknowledge."""
