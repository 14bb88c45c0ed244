"""How one OutboundMessage becomes an ordered list of provider messages."""

from __future__ import annotations

from dataclasses import dataclass

from channels.text import render_parts
from domain.contracts import OutboundAttachment, OutboundMessage, PermanentError


@dataclass(frozen=True, slots=True)
class Step:
    """One provider message: rendered text (or caption) and at most one attachment."""

    text: str | None
    attachment: OutboundAttachment | None = None


def plan_steps(msg: OutboundMessage, *, text_limit: int, caption_limit: int) -> list[Step]:
    """Text that fits one caption rides on the first attachment; otherwise the text parts go
    first and the attachments follow bare. The order is deterministic, so a retry can skip
    the steps an earlier attempt delivered."""
    text_parts = render_parts(msg.text, msg.format, text_limit)
    if not msg.attachments:
        if not text_parts:
            raise PermanentError("message has neither text nor attachments")
        return [Step(part) for part in text_parts]
    caption_parts = render_parts(msg.text, msg.format, caption_limit)
    steps = [Step(None, att) for att in msg.attachments]
    if len(caption_parts) == 1:
        return [Step(caption_parts[0], msg.attachments[0]), *steps[1:]]
    return [*(Step(part) for part in text_parts), *steps]
