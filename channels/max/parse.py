"""MAX update JSON -> InboundEvent. Pure: no I/O. MAX times are Unix milliseconds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from channels.base import MalformedUpdate
from channels.groups import not_served
from channels.payload import (
    Count,
    Int64,
    Latitude,
    Longitude,
    ProviderModel,
    UnixMillis,
    reading,
)
from domain.contracts import AttachmentKind, ContactProfile, InboundEvent, InboundKind, ProviderFileRef
from domain.enums import ChannelKind

log = logging.getLogger(__name__)


# --- the parts of a MAX update we read (Bot API names) ---------------------------------------
class _User(ProviderModel):
    user_id: Int64
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    is_bot: bool = False


class _Recipient(ProviderModel):
    chat_id: Int64
    chat_type: str | None = None  # "dialog" is a user's private chat with the bot; "chat" a group


class _Content(ProviderModel):
    """A message body, or the message a forward carries."""

    text: str | None = None
    # each validated by the model of its type when we read that type (see _ATTACHMENTS)
    attachments: list[dict[str, Any]] | None = None


class _Body(_Content):
    mid: str


class _Link(ProviderModel):
    type: str | None = None
    message: _Content | None = None


class _Message(ProviderModel):
    sender: _User | None = None  # none for channel posts
    recipient: _Recipient
    timestamp: UnixMillis
    body: _Body
    link: _Link | None = None


class _MessageUpdate(ProviderModel):
    update_type: str
    timestamp: UnixMillis
    message: _Message
    user_locale: str | None = None


class _Callback(ProviderModel):
    callback_id: str
    timestamp: UnixMillis
    user: _User
    payload: str | None = None


class _CallbackRecipient(ProviderModel):
    chat_id: Int64 | None = None
    chat_type: str | None = None


class _Button(ProviderModel):
    text: str | None = None
    payload: str | None = None


class _KeyboardPayload(ProviderModel):
    buttons: list[list[_Button]] = Field(default_factory=list)


class _Keyboard(ProviderModel):
    payload: _KeyboardPayload | None = None


class _CallbackMessage(ProviderModel):
    recipient: _CallbackRecipient | None = None
    body: _Content | None = None  # its attachments hold the keyboard that was pressed


class _CallbackUpdate(ProviderModel):
    callback: _Callback
    message: _CallbackMessage | None = None
    user_locale: str | None = None


class _LifecycleUpdate(ProviderModel):
    update_type: str
    timestamp: UnixMillis
    chat_id: Int64
    user: _User
    payload: str | None = None
    user_locale: str | None = None


class _FilePayload(ProviderModel):
    token: str | None = None
    url: str | None = None
    photo_id: Int64 | None = None


class _Media(ProviderModel):
    payload: _FilePayload | None = None
    width: Count | None = None
    height: Count | None = None
    duration: Count | None = None
    transcription: str | None = None


class _File(ProviderModel):
    payload: _FilePayload | None = None
    filename: str | None = None
    size: Count | None = None


class _StickerPayload(ProviderModel):
    url: str | None = None
    code: str | None = None


class _Sticker(ProviderModel):
    payload: _StickerPayload | None = None
    width: Count | None = None
    height: Count | None = None


class _Location(ProviderModel):
    latitude: Latitude
    longitude: Longitude


class _ContactInfo(ProviderModel):
    user_id: Int64 | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class _ContactPayload(ProviderModel):
    vcf_info: str | None = None
    max_info: _ContactInfo | None = None


class _Contact(ProviderModel):
    payload: _ContactPayload | None = None


_LIFECYCLE = {"bot_started": InboundKind.STARTED, "bot_stopped": InboundKind.BLOCKED}
# MAX `audio` attachments are recorded voice messages (they carry a transcription).
_MEDIA = {"image": AttachmentKind.PHOTO, "video": AttachmentKind.VIDEO, "audio": AttachmentKind.VOICE}
# Share previews repeat a link from the text and keyboards are ours: other types are skipped.
_ATTACHMENTS: dict[str, type[ProviderModel]] = {
    **dict.fromkeys(_MEDIA, _Media),
    "file": _File,
    "sticker": _Sticker,
    "location": _Location,
    "contact": _Contact,
}


def parse_update(inbox_id: int, payload: Any) -> list[InboundEvent]:
    update_type = payload.get("update_type") if isinstance(payload, dict) else None
    if not isinstance(update_type, str):
        raise MalformedUpdate("not a MAX update: no update_type")
    with reading(f"MAX {update_type}"):
        if update_type == "message_created":
            return _message(inbox_id, _MessageUpdate.model_validate(payload), InboundKind.MESSAGE)
        if update_type == "message_edited":
            return _message(inbox_id, _MessageUpdate.model_validate(payload), InboundKind.EDIT)
        if update_type == "message_callback":
            return _callback(inbox_id, _CallbackUpdate.model_validate(payload))
        if update_type in _LIFECYCLE:
            return [_lifecycle(inbox_id, _LifecycleUpdate.model_validate(payload), _LIFECYCLE[update_type])]
    log.info("ignoring MAX update of type %s", update_type[:100])
    return []


def _message(inbox_id: int, update: _MessageUpdate, kind: InboundKind) -> list[InboundEvent]:
    m = update.message
    sender = m.sender
    if sender is None or sender.is_bot:
        log.info("ignoring MAX %s from a channel or bot", update.update_type)
        return []
    chat_id = m.recipient.chat_id
    if m.recipient.chat_type != "dialog":
        return not_served(ChannelKind.MAX, inbox_id, chat_id, m.recipient.chat_type)
    body = m.body
    content: _Content = body
    if m.link and m.link.type == "forward" and not body.text and not body.attachments:
        content = m.link.message or _Content()  # a bare forward: its content is the message
    attachments = [ref for a in content.attachments or [] if (ref := _attachment(a))]
    text = content.text or ""
    if not text and not attachments:
        log.info("ignoring MAX %s without text or files", update.update_type)
        return []
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.MAX,
            kind=kind,
            provider_user_id=str(sender.user_id),
            provider_chat_id=str(chat_id),
            provider_message_id=body.mid,
            # an edit happens at the update's time; the message keeps its creation time
            provider_time=_time(update.timestamp if kind == InboundKind.EDIT else m.timestamp),
            text=text,
            attachments=attachments,
            profile=_profile(sender, update.user_locale, phone=_own_phone(attachments, sender.user_id)),
        )
    ]


def _attachment(raw: dict[str, Any]) -> ProviderFileRef | None:
    kind = raw.get("type")
    model = _ATTACHMENTS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None
    a = model.model_validate(raw)
    if isinstance(a, _Media):
        payload = a.payload or _FilePayload()
        return ProviderFileRef(
            kind=_MEDIA[kind],
            file_id=payload.token,
            url=payload.url,
            data=_clean(
                photo_id=payload.photo_id,
                width=a.width,
                height=a.height,
                duration=a.duration,
                transcription=a.transcription,
            ),
        )
    if isinstance(a, _File):
        payload = a.payload or _FilePayload()
        return ProviderFileRef(
            kind=AttachmentKind.DOCUMENT, file_id=payload.token, url=payload.url, file_name=a.filename, size=a.size
        )
    if isinstance(a, _Sticker):
        sticker = a.payload or _StickerPayload()
        return ProviderFileRef(
            kind=AttachmentKind.STICKER,
            url=sticker.url,
            data=_clean(code=sticker.code, width=a.width, height=a.height),
        )
    if isinstance(a, _Location):
        return ProviderFileRef(kind=AttachmentKind.LOCATION, data={"latitude": a.latitude, "longitude": a.longitude})
    assert isinstance(a, _Contact)
    return ProviderFileRef(kind=AttachmentKind.CONTACT, data=_contact(a.payload or _ContactPayload()))


def _contact(payload: _ContactPayload) -> dict[str, str | float | int | None]:
    vcf = _vcf(payload.vcf_info or "")
    info = payload.max_info or _ContactInfo()
    return _clean(
        phone_number=vcf.get("TEL"),
        name=vcf.get("FN") or _name(info) or None,
        user_id=info.user_id,
    )


def _own_phone(attachments: list[ProviderFileRef], user_id: int) -> str | None:
    """The phone on a contact card the sender shared of themselves."""
    for a in attachments:
        phone = a.data.get("phone_number")
        if a.kind == AttachmentKind.CONTACT and a.data.get("user_id") == user_id and isinstance(phone, str):
            return phone
    return None


def _vcf(text: str) -> dict[str, str]:
    """First value of each vCard property, parameters dropped (`TEL;TYPE=cell:+7...` -> TEL)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.split(";", 1)[0].upper(), value.strip())
    return fields


def _callback(inbox_id: int, update: _CallbackUpdate) -> list[InboundEvent]:
    cb = update.callback
    recipient = update.message.recipient if update.message else None
    chat_id = recipient.chat_id if recipient else None
    if chat_id is None:  # MAX dialog ids differ from user ids: without the message we cannot route
        log.info("ignoring MAX message_callback without its message")
        return []
    if recipient.chat_type != "dialog":
        return not_served(ChannelKind.MAX, inbox_id, chat_id, recipient.chat_type)
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.MAX,
            kind=InboundKind.CALLBACK,
            provider_user_id=str(cb.user.user_id),
            provider_chat_id=str(chat_id),
            provider_message_id=f"callback:{cb.callback_id}",
            provider_time=_time(cb.timestamp),
            callback_id=cb.callback_id,
            callback_data=cb.payload,
            callback_label=_label(update.message, cb.payload),
            profile=_profile(cb.user, update.user_locale),
        )
    ]


def _label(message: _CallbackMessage | None, pressed: str | None) -> str | None:
    """The text of the button that carries `pressed`, from the keyboard under the message."""
    attachments = (message.body.attachments if message and message.body else None) or []
    for raw in attachments if pressed is not None else []:
        if raw.get("type") != "inline_keyboard":
            continue
        keyboard = _Keyboard.model_validate(raw).payload or _KeyboardPayload()
        for row in keyboard.buttons:
            for button in row:
                if button.payload == pressed:
                    return button.text
    return None


def _lifecycle(inbox_id: int, update: _LifecycleUpdate, kind: InboundKind) -> InboundEvent:
    return InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.MAX,
        kind=kind,
        provider_user_id=str(update.user.user_id),
        provider_chat_id=str(update.chat_id),
        # no update id in MAX: the chat and the event time identify a replay
        provider_message_id=f"{update.update_type}:{update.chat_id}:{update.timestamp}",
        provider_time=_time(update.timestamp),
        start_payload=update.payload if kind == InboundKind.STARTED else None,
        profile=_profile(update.user, update.user_locale),
    )


def _profile(user: _User, locale: str | None, phone: str | None = None) -> ContactProfile:
    return ContactProfile(
        display_name=_name(user) or user.username or "",
        username=user.username,
        language=locale,
        phone=phone,
    )


def _name(user: _User | _ContactInfo) -> str:
    return user.name or " ".join(p for p in (user.first_name, user.last_name) if p)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _clean(**data: Any) -> dict[str, str | float | int | None]:
    return {k: v for k, v in data.items() if v is not None and not isinstance(v, bool)}
