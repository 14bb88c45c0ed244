"""Files a website visitor sends: what they are is read from their first bytes (never from the
name or the browser's word), within the inbox's limits of size and count; the bytes go to the
content-addressed store, private, and are served only to that visitor (web/widget) and to staff.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.contracts import AttachmentKind, InboundKind
from domain.events import MessageChange, MessageUpdated
from infra.event_log import load_conversation_ids, publish
from infra.files import FileStore
from infra.models import Attachment, Message
from services.errors import Forbidden
from services.ingest import ingest
from services.widget_chat import client_message_key, visitor_event
from services.widget_sessions import VisitorSession, current_conversation

# (MIME type, kind, what the file starts with); WebP: "RIFF", four bytes of size, "WEBP"
SIGNATURES: tuple[tuple[str, AttachmentKind, bytes], ...] = (
    ("image/png", AttachmentKind.PHOTO, b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", AttachmentKind.PHOTO, b"\xff\xd8\xff"),
    ("image/gif", AttachmentKind.PHOTO, b"GIF87a"),
    ("image/gif", AttachmentKind.PHOTO, b"GIF89a"),
    ("application/pdf", AttachmentKind.DOCUMENT, b"%PDF-"),
)
NAME_MAX = 200


class Refused(Exception):
    """A file the inbox does not take: `status` 413 (too large, too many) or 415 (its kind)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def sniff(head: bytes) -> tuple[str, AttachmentKind] | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", AttachmentKind.PHOTO
    for mime, kind, magic in SIGNATURES:
        if head.startswith(magic):
            return mime, kind
    return None


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    content: bytes


def check(files: list[Upload], *, max_bytes: int, max_count: int) -> list[tuple[Upload, str, AttachmentKind]]:
    if not files:
        raise Refused(413, "No file was sent.")
    if len(files) > max_count:
        raise Refused(413, f"At most {max_count} files at once.")
    checked = []
    for upload in files:
        if len(upload.content) > max_bytes:
            raise Refused(413, f"{upload.name[:100]} is larger than {max_bytes // 2**20} MB.")
        found = sniff(upload.content[:16])
        if found is None:
            raise Refused(415, f"{upload.name[:100]} is not an image (PNG, JPEG, GIF, WebP) or a PDF.")
        checked.append((upload, *found))
    return checked


async def post_files(
    factory: async_sessionmaker[AsyncSession],
    store: FileStore,
    session: VisitorSession,
    client_id: str,
    files: list[tuple[Upload, str, AttachmentKind]],
) -> int:
    """A message of the visitor's with these files, once per client id: a retry completes what
    an interrupted try left (the files of a message stored without them) and adds nothing twice."""
    stored = [await asyncio.to_thread(store.put, upload.content) for upload, _, _ in files]
    event = visitor_event(session, InboundKind.MESSAGE, provider_message_id=client_message_key(session, client_id))
    result = await ingest(factory, event)
    async with factory() as db, db.begin():
        message = await db.scalar(
            select(Message)
            .where(Message.inbox_id == session.inbox_id, Message.provider_message_id == event.provider_message_id)
            .with_for_update()
        )
        assert message is not None and (result.message_id in (None, message.id))
        if await db.scalar(select(Attachment.id).where(Attachment.message_id == message.id).limit(1)) is not None:
            return message.id
        now = datetime.now(UTC)
        for (upload, mime, kind), saved in zip(files, stored, strict=True):
            db.add(
                Attachment(
                    message_id=message.id,
                    kind=kind.value,
                    file_name=upload.name[:NAME_MAX],
                    mime_type=mime,
                    size=saved.size,
                    sha256=saved.sha256,
                    stored_at=now,
                )
            )
        ref = await load_conversation_ids(db, message.conversation_id)
        await publish(db, MessageUpdated.of(ref, message_id=message.id, change=MessageChange.ATTACHMENTS))
        return message.id


async def visitor_file(db: AsyncSession, session: VisitorSession, attachment_id: int) -> Attachment:
    """A stored file of the visitor's own conversation; Forbidden for any other id."""
    conversation = await current_conversation(db, session)
    if conversation is None:
        raise Forbidden()
    attachment = await db.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(
            Attachment.id == attachment_id,
            Message.conversation_id == conversation.id,
            Message.is_note.is_(False),
            Attachment.sha256.is_not(None),
        )
    )
    if attachment is None:
        raise Forbidden()
    return attachment
