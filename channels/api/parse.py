"""An inbound message as an integrator posts it to the API channel:

    {"contact": {"id": "crm-42", "name": "Ann", "phone": "+7 999 123-45-67"},
     "message": {"id": "crm-msg-1001", "text": "Where is my order?", "sent_at": "2026-11-27T09:14:03Z"}}

`contact.id` is the integrator's id for its customer (one identity per id and inbox's channel),
`message.id` its id for the message: posting the same id again stores nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from channels.base import MalformedUpdate
from domain.contracts import (
    ContactProfile as Profile,
    CustomerText as Text,
    DisplayName,
    InboundEvent,
    InboundKind,
    Phone,
    ProviderId,
    Username,
)
from domain.enums import ChannelKind

TEXT_MAX = 10_000


class ApiContact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ProviderId = Field(description="Your id for the customer.")
    name: DisplayName = ""
    username: Username | None = None
    phone: Phone | None = None


class ApiMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ProviderId = Field(description="Your id for the message: the same id is stored once.")
    text: Text = Field(min_length=1, max_length=TEXT_MAX)
    sent_at: AwareDatetime | None = Field(default=None, description="When the customer wrote it; now if absent.")


class ApiInbound(BaseModel):
    """The body of an inbound message posted to an API-channel inbox."""

    model_config = ConfigDict(extra="forbid")

    contact: ApiContact
    message: ApiMessage


def parse_update(inbox_id: int, payload: Any, *, received_at: datetime | None = None) -> list[InboundEvent]:
    try:
        posted = ApiInbound.model_validate(payload)
    except ValidationError as exc:
        raise MalformedUpdate(str(exc)) from None
    contact, message = posted.contact, posted.message
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.API,
            kind=InboundKind.MESSAGE,
            provider_user_id=contact.id,
            provider_chat_id=contact.id,
            provider_message_id=message.id,
            provider_time=message.sent_at or received_at or datetime.now(UTC),
            text=message.text,
            profile=Profile(display_name=contact.name, username=contact.username, phone=contact.phone),
        )
    ]
