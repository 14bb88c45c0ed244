"""Contracts between channels, the inbound/delivery paths and workflows (DESIGN.md "Contracts")."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.enums import ChannelKind, ErrorClass, Interface, MessageFormat


class InboundKind(StrEnum):
    MESSAGE = "message"
    EDIT = "edit"
    CALLBACK = "callback"
    BLOCKED = "blocked"  # the contact blocked / stopped this inbox's bot: unreachable through it
    STARTED = "started"  # the contact (re)started this inbox's bot: reachable through it again
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


# Widths of the columns inbound data is stored in (infra/models.py declares them from here).
PROVIDER_ID_MAX = 200
USERNAME_MAX = 200
DISPLAY_NAME_MAX = 300
PHONE_MAX = 50
REGION_MAX = 100
FILE_NAME_MAX = 300
MIME_TYPE_MAX = 200
INT64_MAX = 2**63 - 1
# the id of one of our rows, as a form or the API names it: a number the database can hold
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]


def _storable(value: str) -> str:
    """PostgreSQL text holds neither NUL nor a lone surrogate (the standard JSON parser lets one
    through from a `\\ud800` escape); a provider passes either on from pasted text."""
    value = value.replace("\x00", "")
    try:
        value.encode()
    except UnicodeEncodeError:
        value = value.encode(errors="replace").decode()
    return value


def _clipped(limit: int) -> AfterValidator:
    return AfterValidator(lambda value: value[:limit])


# Text a customer or provider controls: cleaned of what the database cannot store rather than
# refused, so the message it belongs to is kept. Names longer than their column are cut there.
CustomerText = Annotated[str, AfterValidator(_storable)]
DisplayName = Annotated[CustomerText, _clipped(DISPLAY_NAME_MAX)]
Username = Annotated[CustomerText, _clipped(USERNAME_MAX)]
Phone = Annotated[CustomerText, _clipped(PHONE_MAX)]
Region = Annotated[CustomerText, _clipped(REGION_MAX)]
FileName = Annotated[CustomerText, _clipped(FILE_NAME_MAX)]
# An id is a key: cutting it could merge two, so one that does not fit is refused.
ProviderId = Annotated[str, StringConstraints(min_length=1, max_length=PROVIDER_ID_MAX, pattern=r"^[^\x00]+$")]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _no_mime_type_past_its_column(value: str | None) -> str | None:
    return value if value is None or len(value) <= MIME_TYPE_MAX else None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProviderFileRef(_Frozen):
    """An attachment as the provider names it; an activity fetches the bytes later."""

    kind: AttachmentKind
    file_id: CustomerText | None = None  # Telegram file_id, MAX token
    url: CustomerText | None = None  # MAX attachment URL
    file_name: FileName | None = None
    # longer than any real MIME type: unknown, so the fetched bytes decide
    mime_type: Annotated[CustomerText | None, AfterValidator(_no_mime_type_past_its_column)] = None
    size: Annotated[int, Field(ge=0, le=INT64_MAX)] | None = None
    # location / shared contact / sticker details that are not files
    data: dict[str, CustomerText | int | FiniteFloat | None] = Field(default_factory=dict)


class ContactProfile(_Frozen):
    display_name: DisplayName = ""
    username: Username | None = None
    language: CustomerText | None = None
    phone: Phone | None = None
    region: Region | None = None  # GeoIP or provider-supplied region code, used for branch routing


class InboundEvent(_Frozen):
    """What a channel adapter makes of one provider payload."""

    inbox_id: int
    channel: ChannelKind
    interface: Interface = Interface.BOT
    kind: InboundKind
    provider_user_id: ProviderId
    provider_chat_id: ProviderId
    # Unique per inbox for MESSAGE (dedup key). For EDIT it names the edited message; for
    # other kinds it is the provider's update id when it has one.
    provider_message_id: ProviderId | None = None
    provider_time: datetime
    text: CustomerText = ""
    attachments: list[ProviderFileRef] = Field(default_factory=list)
    media_group_id: CustomerText | None = None
    callback_id: CustomerText | None = None
    callback_data: CustomerText | None = None
    # the pressed button's text, when the provider sent the keyboard along
    callback_label: CustomerText | None = None
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
    """The contact blocked the bot or was deactivated: unreachable through this inbox."""


class ChatMigratedError(DeliveryError):
    """Telegram: the group became a supergroup; resend to `new_chat_id`."""

    def __init__(self, reason: str, *, new_chat_id: str) -> None:
        super().__init__(reason, provider_code=400)
        self.new_chat_id = new_chat_id
