"""MAX update JSON -> InboundEvent. Pure: no I/O. MAX times are Unix milliseconds."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from channels.base import MalformedUpdate
from domain.contracts import AttachmentKind, ContactProfile, InboundEvent, InboundKind, ProviderFileRef
from domain.enums import ChannelKind

log = logging.getLogger(__name__)

_LIFECYCLE = {"bot_started": InboundKind.STARTED, "bot_stopped": InboundKind.BLOCKED}
# MAX `audio` attachments are recorded voice messages (they carry a transcription).
_MEDIA = {"image": AttachmentKind.PHOTO, "video": AttachmentKind.VIDEO, "audio": AttachmentKind.VOICE}


def parse_update(inbox_id: int, payload: Any) -> list[InboundEvent]:
    if not isinstance(payload, dict) or not isinstance(payload.get("update_type"), str):
        raise MalformedUpdate("not a MAX update: no update_type")
    if not isinstance(payload.get("timestamp"), int):
        raise MalformedUpdate("not a MAX update: no integer timestamp")
    update_type = payload["update_type"]
    try:
        if update_type == "message_created":
            return _message(inbox_id, payload, InboundKind.MESSAGE)
        if update_type == "message_edited":
            return _message(inbox_id, payload, InboundKind.EDIT)
        if update_type == "message_callback":
            return _callback(inbox_id, payload)
        if update_type in _LIFECYCLE:
            return [_lifecycle(inbox_id, payload, _LIFECYCLE[update_type])]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedUpdate(f"MAX {update_type}: missing or bad field {exc!s}") from exc
    log.info("ignoring MAX update of type %s", update_type)
    return []


def _message(inbox_id: int, payload: dict[str, Any], kind: InboundKind) -> list[InboundEvent]:
    m = payload["message"]
    sender = m.get("sender")
    if not sender or sender.get("is_bot"):
        log.info("ignoring MAX %s from a channel or bot", payload["update_type"])
        return []
    chat_id = m["recipient"]["chat_id"]
    if chat_id is None:
        raise MalformedUpdate("MAX message without recipient.chat_id")
    body = m["body"]
    content = body
    link = m.get("link") or {}
    if link.get("type") == "forward" and not body.get("text") and not body.get("attachments"):
        content = link.get("message") or {}  # a bare forward: its content is the message
    attachments = [ref for a in content.get("attachments") or [] if (ref := _attachment(a))]
    text = content.get("text") or ""
    if not text and not attachments:
        log.info("ignoring MAX %s without text or files", payload["update_type"])
        return []
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.MAX,
            kind=kind,
            provider_user_id=str(sender["user_id"]),
            provider_chat_id=str(chat_id),
            provider_message_id=str(body["mid"]),
            # an edit happens at the update's time; the message keeps its creation time
            provider_time=_time(payload["timestamp"] if kind == InboundKind.EDIT else m["timestamp"]),
            text=text,
            attachments=attachments,
            profile=_profile(sender, payload.get("user_locale")),
        )
    ]


def _attachment(a: dict[str, Any]) -> ProviderFileRef | None:
    kind, payload = a.get("type"), a.get("payload") or {}
    if kind in _MEDIA:
        return ProviderFileRef(
            kind=_MEDIA[kind],
            file_id=payload.get("token"),
            url=payload.get("url"),
            data=_clean(
                photo_id=payload.get("photo_id"),
                width=a.get("width"),
                height=a.get("height"),
                duration=a.get("duration"),
                transcription=a.get("transcription"),
            ),
        )
    if kind == "file":
        return ProviderFileRef(
            kind=AttachmentKind.DOCUMENT,
            file_id=payload.get("token"),
            url=payload.get("url"),
            file_name=a.get("filename"),
            size=a.get("size"),
        )
    if kind == "sticker":
        return ProviderFileRef(
            kind=AttachmentKind.STICKER,
            url=payload.get("url"),
            data=_clean(code=payload.get("code"), width=a.get("width"), height=a.get("height")),
        )
    if kind == "location":
        return ProviderFileRef(
            kind=AttachmentKind.LOCATION,
            data={"latitude": float(a["latitude"]), "longitude": float(a["longitude"])},
        )
    if kind == "contact":
        return ProviderFileRef(kind=AttachmentKind.CONTACT, data=_contact(payload))
    return None  # share previews repeat a link from the text; keyboards are ours


def _contact(payload: dict[str, Any]) -> dict[str, str | float | int | None]:
    vcf = _vcf(payload.get("vcf_info") or "")
    info = payload.get("max_info") or {}
    return _clean(
        phone_number=vcf.get("TEL"),
        name=vcf.get("FN") or _name(info) or None,
        user_id=info.get("user_id"),
    )


def _vcf(text: str) -> dict[str, str]:
    """First value of each vCard property, parameters dropped (`TEL;TYPE=cell:+7...` -> TEL)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.split(";", 1)[0].upper(), value.strip())
    return fields


def _callback(inbox_id: int, payload: dict[str, Any]) -> list[InboundEvent]:
    cb = payload["callback"]
    chat_id = ((payload.get("message") or {}).get("recipient") or {}).get("chat_id")
    if chat_id is None:  # MAX dialog ids differ from user ids: without the message we cannot route
        log.info("ignoring MAX message_callback without its message")
        return []
    user = cb["user"]
    return [
        InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.MAX,
            kind=InboundKind.CALLBACK,
            provider_user_id=str(user["user_id"]),
            provider_chat_id=str(chat_id),
            provider_message_id=f"callback:{cb['callback_id']}",
            provider_time=_time(cb["timestamp"]),
            callback_id=str(cb["callback_id"]),
            callback_data=cb.get("payload"),
            profile=_profile(user, payload.get("user_locale")),
        )
    ]


def _lifecycle(inbox_id: int, payload: dict[str, Any], kind: InboundKind) -> InboundEvent:
    user, chat_id = payload["user"], payload["chat_id"]
    return InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.MAX,
        kind=kind,
        provider_user_id=str(user["user_id"]),
        provider_chat_id=str(chat_id),
        # no update id in MAX: the chat and the event time identify a replay
        provider_message_id=f"{payload['update_type']}:{chat_id}:{payload['timestamp']}",
        provider_time=_time(payload["timestamp"]),
        start_payload=payload.get("payload") if kind == InboundKind.STARTED else None,
        profile=_profile(user, payload.get("user_locale")),
    )


def _profile(user: dict[str, Any], locale: str | None) -> ContactProfile:
    return ContactProfile(
        display_name=_name(user) or user.get("username") or "",
        username=user.get("username"),
        language=locale,
    )


def _name(user: dict[str, Any]) -> str:
    return user.get("name") or " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p)


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _clean(**data: Any) -> dict[str, str | float | int | None]:
    return {k: v for k, v in data.items() if v is not None and not isinstance(v, bool)}
