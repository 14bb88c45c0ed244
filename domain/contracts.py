"""Contracts between channels, the inbound/delivery paths and workflows (DESIGN.md "Contracts")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.enums import ChannelKind, ErrorClass, Interface, MessageFormat


class InboundKind(StrEnum):
    MESSAGE = "message"
    EDIT = "edit"
    CALLBACK = "callback"
    BLOCKED = "blocked"  # the contact blocked / stopped the bot: identity unreachable
    STARTED = "started"  # the contact (re)started the bot: identity reachable again
    TYPING = "typing"
    READ = "read"


class AttachmentKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"
    VOICE = "voice"
    VIDEO = "video"
    AUDIO = "audio"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACT = "contact"


def _without_nul(value: str) -> str:
    return value.replace("\x00", "")


# Text a customer controls. PostgreSQL text cannot hold NUL characters, and a provider will
# pass one on from pasted text: drop them rather than have the database refuse the message.
CustomerText = Annotated[str, AfterValidator(_without_nul)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderFileRef(_Frozen):
    """An attachment as the provider names it; an activity fetches the bytes later."""

    kind: AttachmentKind
    file_id: str | None = None  # Telegram file_id, MAX token
    url: str | None = None  # MAX attachment URL
    file_name: str | None = None
    mime_type: str | None = None
    size: int | None = None
    # location / shared contact / sticker details that are not files
    data: dict[str, str | float | int | None] = Field(default_factory=dict)


class ContactProfile(_Frozen):
    display_name: CustomerText = ""
    username: CustomerText | None = None
    language: str | None = None
    phone: str | None = None
    region: str | None = None  # GeoIP or provider-supplied region code, used for branch routing


class InboundEvent(_Frozen):
    """What a channel adapter makes of one provider payload."""

    inbox_id: int
    channel: ChannelKind
    interface: Interface = Interface.BOT
    kind: InboundKind
    provider_user_id: str
    provider_chat_id: str
    # Unique per inbox for MESSAGE (dedup key). For EDIT it names the edited message; for
    # other kinds it is the provider's update id when it has one.
    provider_message_id: str | None = None
    provider_time: datetime
    text: CustomerText = ""
    attachments: list[ProviderFileRef] = Field(default_factory=list)
    media_group_id: str | None = None
    callback_id: str | None = None
    callback_data: CustomerText | None = None
    start_payload: CustomerText | None = None
    profile: ContactProfile = Field(default_factory=ContactProfile)


class OutboundAttachment(_Frozen):
    attachment_id: int
    file_name: str
    mime_type: str
    size: int
    sha256: str


class OutboundMessage(_Frozen):
    message_id: int
    conversation_id: int
    inbox_id: int
    channel: ChannelKind
    provider_chat_id: str
    text: str = ""
    format: MessageFormat = MessageFormat.PLAIN
    attachments: list[OutboundAttachment] = Field(default_factory=list)


class SendResult(_Frozen):
    provider_message_ids: list[str]
    # a Telegram group that became a supergroup: future sends go to the new chat id
    migrated_chat_id: str | None = None


class DeliveryError(Exception):
    """Raised by channel adapters; the delivery workflow decides what it means."""

    error_class: ErrorClass = ErrorClass.RETRYABLE
    # Provider ids of the parts of a multi-part send that were delivered before this error:
    # retry with `send(..., skip_parts=len(sent_message_ids))` so they are not sent twice.
    sent_message_ids: tuple[str, ...] = ()

    def __init__(self, reason: str, *, provider_code: int | str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provider_code = provider_code


class RetryableError(DeliveryError):
    error_class = ErrorClass.RETRYABLE


class RateLimitedError(DeliveryError):
    error_class = ErrorClass.RATE_LIMITED

    def __init__(self, reason: str, *, retry_after: float, provider_code: int | str | None = 429) -> None:
        super().__init__(reason, provider_code=provider_code)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    error_class = ErrorClass.PERMANENT


class RecipientBlockedError(PermanentError):
    """The contact blocked the bot or was deactivated: the identity becomes unreachable."""


class ChatMigratedError(DeliveryError):
    """Telegram: the group became a supergroup; resend to `new_chat_id`."""

    def __init__(self, reason: str, *, new_chat_id: str) -> None:
        super().__init__(reason, provider_code=400)
        self.new_chat_id = new_chat_id
