"""Telegram Update JSON -> InboundEvent. Pure: no I/O."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from channels.base import MalformedUpdate
from domain.contracts import AttachmentKind, ContactProfile, InboundEvent, InboundKind, ProviderFileRef
from domain.enums import ChannelKind

log = logging.getLogger(__name__)

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
    if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
        raise MalformedUpdate("not a Telegram update: no integer update_id")
    update_id = payload["update_id"]
    try:
        if "message" in payload:
            return _message(inbox_id, payload["message"], InboundKind.MESSAGE)
        if "edited_message" in payload:
            return _message(inbox_id, payload["edited_message"], InboundKind.EDIT)
        if "callback_query" in payload:
            return [_callback(inbox_id, payload["callback_query"], received_at)]
        if "my_chat_member" in payload:
            return _member(inbox_id, payload["my_chat_member"], update_id)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedUpdate(f"Telegram update {update_id}: missing or bad field {exc!s}") from exc
    log.info("ignoring Telegram update %s of kind %s", update_id, sorted(set(payload) - {"update_id"}))
    return []


def _message(inbox_id: int, m: dict[str, Any], kind: InboundKind) -> list[InboundEvent]:
    chat = m["chat"]
    sender = m.get("from") or {"id": chat["id"]}
    attachments = _attachments(m)
    text = m.get("text") or m.get("caption") or ""
    if not text and not attachments:
        log.info("ignoring Telegram service message with fields %s", sorted(m))
        return []
    started = kind == InboundKind.MESSAGE and _is_start(text, chat)
    contact = m.get("contact") or {}
    own_phone = contact.get("phone_number") if contact.get("user_id") == sender["id"] else None
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.STARTED if started else kind,
            provider_user_id=str(sender["id"]),
            provider_chat_id=str(chat["id"]),
            # message_id is unique per chat only
            provider_message_id=f"{chat['id']}:{m['message_id']}",
            provider_time=_time(m.get("edit_date") if kind == InboundKind.EDIT else None, m["date"]),
            text=text,
            attachments=attachments,
            media_group_id=m.get("media_group_id"),
            start_payload=(text.partition(" ")[2].strip() or None) if started else None,
            profile=_profile(sender, phone=own_phone),
        )
    ]


def _is_start(text: str, chat: dict[str, Any]) -> bool:
    """`/start` or `/start <deep-link payload>` in a private chat (re)starts the bot."""
    return chat.get("type") == "private" and text.partition(" ")[0] == "/start"


def _attachments(m: dict[str, Any]) -> list[ProviderFileRef]:
    refs: list[ProviderFileRef] = []
    if photo := m.get("photo"):
        best = max(photo, key=lambda s: (s.get("width", 0) * s.get("height", 0), s.get("file_size") or 0))
        refs.append(
            _file_ref(AttachmentKind.PHOTO, best, "image/jpeg", width=best.get("width"), height=best.get("height"))
        )
    for field, kind, default_mime in _FILES:
        if f := m.get(field):
            refs.append(_file_ref(kind, f, default_mime, duration=f.get("duration")))
    if sticker := m.get("sticker"):
        mime = (
            "video/webm"
            if sticker.get("is_video")
            else "application/x-tgsticker"
            if sticker.get("is_animated")
            else "image/webp"
        )
        refs.append(
            _file_ref(
                AttachmentKind.STICKER, sticker, mime, emoji=sticker.get("emoji"), set_name=sticker.get("set_name")
            )
        )
    if location := m.get("location"):
        venue = m.get("venue") or {}
        refs.append(
            ProviderFileRef(
                kind=AttachmentKind.LOCATION,
                data=_clean(
                    latitude=float(location["latitude"]),
                    longitude=float(location["longitude"]),
                    title=venue.get("title"),
                    address=venue.get("address"),
                ),
            )
        )
    if contact := m.get("contact"):
        refs.append(
            ProviderFileRef(
                kind=AttachmentKind.CONTACT,
                data=_clean(
                    phone_number=contact["phone_number"],
                    first_name=contact.get("first_name"),
                    last_name=contact.get("last_name"),
                    user_id=contact.get("user_id"),
                ),
            )
        )
    return refs


def _file_ref(kind: AttachmentKind, f: dict[str, Any], default_mime: str | None, **data: Any) -> ProviderFileRef:
    return ProviderFileRef(
        kind=kind,
        file_id=f["file_id"],
        file_name=f.get("file_name"),
        mime_type=f.get("mime_type") or default_mime,
        size=f.get("file_size"),
        data=_clean(file_unique_id=f.get("file_unique_id"), **data),
    )


def _callback(inbox_id: int, cq: dict[str, Any], received_at: datetime) -> InboundEvent:
    user = cq["from"]
    # Inline-mode callbacks carry no message; the user's private chat id equals the user id.
    chat_id = ((cq.get("message") or {}).get("chat") or {}).get("id", user["id"])
    return InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.TELEGRAM,
        kind=InboundKind.CALLBACK,
        provider_user_id=str(user["id"]),
        provider_chat_id=str(chat_id),
        provider_message_id=f"callback:{cq['id']}",
        provider_time=received_at,  # callback queries carry no date
        callback_id=str(cq["id"]),
        callback_data=cq.get("data"),
        profile=_profile(user),
    )


def _member(inbox_id: int, mcm: dict[str, Any], update_id: int) -> list[InboundEvent]:
    chat = mcm["chat"]
    kind = _MEMBER_KINDS.get(mcm["new_chat_member"]["status"])
    if chat.get("type") != "private" or kind is None:
        log.info("ignoring Telegram my_chat_member in a %s chat", chat.get("type"))
        return []
    user = mcm["from"]
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=kind,
            provider_user_id=str(user["id"]),
            provider_chat_id=str(chat["id"]),
            provider_message_id=f"update:{update_id}",
            provider_time=_time(None, mcm["date"]),
            profile=_profile(user),
        )
    ]


def _profile(user: dict[str, Any], phone: str | None = None) -> ContactProfile:
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)
    return ContactProfile(
        display_name=name or user.get("username") or "",
        username=user.get("username"),
        language=user.get("language_code"),
        phone=phone,
    )


def _time(preferred: int | None, fallback: int) -> datetime:
    return datetime.fromtimestamp(preferred or fallback, UTC)


def _clean(**data: Any) -> dict[str, str | float | int | None]:
    return {k: v for k, v in data.items() if v is not None and not isinstance(v, bool)}
