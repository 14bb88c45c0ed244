"""Telegram Update JSON -> InboundEvent. Pure: no I/O."""

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
    UnixSeconds,
    reading,
)
from domain.contracts import AttachmentKind, ContactProfile, InboundEvent, InboundKind, ProviderFileRef
from domain.enums import ChannelKind

log = logging.getLogger(__name__)


# --- the parts of a Telegram Update we read (Bot API names) ----------------------------------
class _User(ProviderModel):
    id: Int64
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


class _Chat(ProviderModel):
    id: Int64
    type: str | None = None


class _File(ProviderModel):
    file_id: str
    file_unique_id: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: Count | None = None
    duration: Count | None = None


class _PhotoSize(_File):
    width: Count = 0
    height: Count = 0


class _Sticker(_File):
    is_animated: bool = False
    is_video: bool = False
    emoji: str | None = None
    set_name: str | None = None


class _Location(ProviderModel):
    latitude: Latitude
    longitude: Longitude


class _Venue(ProviderModel):
    title: str | None = None
    address: str | None = None


class _Contact(ProviderModel):
    phone_number: str
    first_name: str | None = None
    last_name: str | None = None
    user_id: Int64 | None = None


class _Message(ProviderModel):
    message_id: Int64
    sender: _User | None = Field(None, alias="from")
    chat: _Chat
    date: UnixSeconds
    edit_date: UnixSeconds | None = None
    text: str | None = None
    caption: str | None = None
    media_group_id: str | None = None
    photo: list[_PhotoSize] | None = None
    document: _File | None = None
    video: _File | None = None
    video_note: _File | None = None
    voice: _File | None = None
    audio: _File | None = None
    sticker: _Sticker | None = None
    location: _Location | None = None
    venue: _Venue | None = None
    contact: _Contact | None = None


class _Button(ProviderModel):
    text: str | None = None
    callback_data: str | None = None


class _Keyboard(ProviderModel):
    inline_keyboard: list[list[_Button]] = Field(default_factory=list)


class _CallbackMessage(ProviderModel):
    chat: _Chat | None = None  # also an inaccessible message has its chat
    reply_markup: _Keyboard | None = None


class _CallbackQuery(ProviderModel):
    id: str
    sender: _User = Field(alias="from")
    message: _CallbackMessage | None = None
    data: str | None = None


class _ChatMember(ProviderModel):
    status: str


class _ChatMemberUpdated(ProviderModel):
    chat: _Chat
    sender: _User = Field(alias="from")
    date: UnixSeconds
    new_chat_member: _ChatMember


class _Update(ProviderModel):
    update_id: Int64
    message: _Message | None = None
    edited_message: _Message | None = None
    callback_query: _CallbackQuery | None = None
    my_chat_member: _ChatMemberUpdated | None = None


# File-like message fields, each one attachment (`animation` also arrives as `document`).
_FILES = (
    ("document", AttachmentKind.DOCUMENT, None),
    ("video", AttachmentKind.VIDEO, None),
    ("video_note", AttachmentKind.VIDEO, "video/mp4"),
    ("voice", AttachmentKind.VOICE, "audio/ogg"),
    ("audio", AttachmentKind.AUDIO, None),
)
_MEMBER_KINDS = {"kicked": InboundKind.BLOCKED, "member": InboundKind.STARTED}


def parse_update(inbox_id: int, payload: Any, received_at: datetime) -> list[InboundEvent]:
    update_id = payload.get("update_id") if isinstance(payload, dict) else None
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise MalformedUpdate("not a Telegram update: no integer update_id")
    with reading(f"Telegram update {update_id}"):
        update = _Update.model_validate(payload)
        if update.message is not None:
            return _message(inbox_id, update.message, InboundKind.MESSAGE, payload["message"])
        if update.edited_message is not None:
            return _message(inbox_id, update.edited_message, InboundKind.EDIT, payload["edited_message"])
        if update.callback_query is not None:
            return _callback(inbox_id, update.callback_query, received_at)
        if update.my_chat_member is not None:
            return _member(inbox_id, update.my_chat_member, update_id)
    log.info("ignoring Telegram update %s of kind %s", update_id, sorted(set(payload) - {"update_id"})[:10])
    return []


def _message(inbox_id: int, m: _Message, kind: InboundKind, raw: dict[str, Any]) -> list[InboundEvent]:
    chat = m.chat
    if chat.type != "private":
        return not_served(ChannelKind.TELEGRAM, inbox_id, chat.id, chat.type)
    sender = m.sender or _User(id=chat.id)
    attachments = _attachments(m)
    text = m.text or m.caption or ""
    if not text and not attachments:
        log.info("ignoring Telegram service message with fields %s", sorted(raw)[:30])
        return []
    started = kind == InboundKind.MESSAGE and _is_start(text)
    own_phone = m.contact.phone_number if m.contact and m.contact.user_id == sender.id else None
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.STARTED if started else kind,
            provider_user_id=str(sender.id),
            provider_chat_id=str(chat.id),
            # message_id is unique per chat only
            provider_message_id=f"{chat.id}:{m.message_id}",
            provider_time=_time(m.edit_date if kind == InboundKind.EDIT else None, m.date),
            text=text,
            attachments=attachments,
            media_group_id=m.media_group_id,
            start_payload=(text.partition(" ")[2].strip() or None) if started else None,
            profile=_profile(sender, phone=own_phone),
        )
    ]


def _is_start(text: str) -> bool:
    """`/start` or `/start <deep-link payload>` (re)starts the bot."""
    return text.partition(" ")[0] == "/start"


def _attachments(m: _Message) -> list[ProviderFileRef]:
    refs: list[ProviderFileRef] = []
    if m.photo:
        best = max(m.photo, key=lambda s: (s.width * s.height, s.file_size or 0))
        refs.append(_file_ref(AttachmentKind.PHOTO, best, "image/jpeg", width=best.width, height=best.height))
    for field, kind, default_mime in _FILES:
        if f := getattr(m, field):
            refs.append(_file_ref(kind, f, default_mime, duration=f.duration))
    if sticker := m.sticker:
        mime = "video/webm" if sticker.is_video else "application/x-tgsticker" if sticker.is_animated else "image/webp"
        refs.append(_file_ref(AttachmentKind.STICKER, sticker, mime, emoji=sticker.emoji, set_name=sticker.set_name))
    if location := m.location:
        venue = m.venue or _Venue()
        refs.append(
            ProviderFileRef(
                kind=AttachmentKind.LOCATION,
                data=_clean(
                    latitude=location.latitude,
                    longitude=location.longitude,
                    title=venue.title,
                    address=venue.address,
                ),
            )
        )
    if contact := m.contact:
        refs.append(
            ProviderFileRef(
                kind=AttachmentKind.CONTACT,
                data=_clean(
                    phone_number=contact.phone_number,
                    first_name=contact.first_name,
                    last_name=contact.last_name,
                    user_id=contact.user_id,
                ),
            )
        )
    return refs


def _file_ref(kind: AttachmentKind, f: _File, default_mime: str | None, **data: Any) -> ProviderFileRef:
    return ProviderFileRef(
        kind=kind,
        file_id=f.file_id,
        file_name=f.file_name,
        mime_type=f.mime_type or default_mime,
        size=f.file_size,
        data=_clean(file_unique_id=f.file_unique_id, **data),
    )


def _callback(inbox_id: int, cq: _CallbackQuery, received_at: datetime) -> list[InboundEvent]:
    user = cq.sender
    # Inline-mode callbacks carry no message; the user's private chat id equals the user id.
    chat = cq.message.chat if cq.message else None
    if chat is not None and chat.type != "private":
        return not_served(ChannelKind.TELEGRAM, inbox_id, chat.id, chat.type)
    keyboard = cq.message.reply_markup if cq.message else None
    rows = keyboard.inline_keyboard if keyboard else []
    label = next((b.text for row in rows for b in row if b.callback_data == cq.data and cq.data is not None), None)
    event = InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.TELEGRAM,
        kind=InboundKind.CALLBACK,
        provider_user_id=str(user.id),
        provider_chat_id=str(chat.id if chat else user.id),
        provider_message_id=f"callback:{cq.id}",
        provider_time=received_at,  # callback queries carry no date
        callback_id=cq.id,
        callback_data=cq.data,
        callback_label=label,
        profile=_profile(user),
    )
    return [event]


def _member(inbox_id: int, mcm: _ChatMemberUpdated, update_id: int) -> list[InboundEvent]:
    chat = mcm.chat
    kind = _MEMBER_KINDS.get(mcm.new_chat_member.status)
    if chat.type != "private" or kind is None:
        log.info("ignoring Telegram my_chat_member in a %s chat", chat.type)
        return []
    user = mcm.sender
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=kind,
            provider_user_id=str(user.id),
            provider_chat_id=str(chat.id),
            provider_message_id=f"update:{update_id}",
            provider_time=_time(None, mcm.date),
            profile=_profile(user),
        )
    ]


def _profile(user: _User, phone: str | None = None) -> ContactProfile:
    name = " ".join(p for p in (user.first_name, user.last_name) if p)
    return ContactProfile(
        display_name=name or user.username or "",
        username=user.username,
        language=user.language_code,
        phone=phone,
    )


def _time(preferred: int | None, fallback: int) -> datetime:
    return datetime.fromtimestamp(preferred or fallback, UTC)


def _clean(**data: Any) -> dict[str, str | float | int | None]:
    return {k: v for k, v in data.items() if v is not None and not isinstance(v, bool)}
