"""Files people send us from a browser (a website visitor in the widget, an operator in the
composer): what a file is is read from its first bytes (never from its name or the browser's
word), within the inbox's limits of size and count; the bytes go to the content-addressed store.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.contracts import AttachmentKind
from domain.wording import N_
from infra.files import FileStore
from infra.models import Attachment, Inbox

# (MIME type, kind, what the file starts with); WebP: "RIFF", four bytes of size, "WEBP"
SIGNATURES: tuple[tuple[str, AttachmentKind, bytes], ...] = (
    ("image/png", AttachmentKind.PHOTO, b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", AttachmentKind.PHOTO, b"\xff\xd8\xff"),
    ("image/gif", AttachmentKind.PHOTO, b"GIF87a"),
    ("image/gif", AttachmentKind.PHOTO, b"GIF89a"),
    ("application/pdf", AttachmentKind.DOCUMENT, b"%PDF-"),
)
NAME_MAX = 200
DEFAULT_MAX_BYTES = 20 * 2**20
DEFAULT_MAX_COUNT = 10


class Refused(Exception):
    """A file the inbox does not take: `status` 413 (too large, too many) or 415 (its kind).
    `detail` is a msgid; `params` fill it in."""

    def __init__(self, status: int, detail: str, **params: object) -> None:
        super().__init__(detail % params if params else detail)
        self.status = status
        self.detail = detail
        self.params = params


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_count: int


def inbox_limits(inbox: Inbox, *, app_max_bytes: int, channel_max_bytes: int | None = None) -> Limits:
    """The inbox's own limits (settings), capped by the deployment's and, for what is sent out,
    by what the channel's provider accepts."""
    s = inbox.settings or {}
    max_bytes = min(s.get("attachment_max_bytes") or DEFAULT_MAX_BYTES, app_max_bytes)
    if channel_max_bytes is not None:
        max_bytes = min(max_bytes, channel_max_bytes)
    return Limits(max_bytes, s.get("attachment_max_count") or DEFAULT_MAX_COUNT)


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


@dataclass(frozen=True, slots=True)
class Checked:
    upload: Upload
    mime_type: str
    kind: AttachmentKind


def check_count(count: int, limits: Limits) -> None:
    if count > limits.max_count:
        raise Refused(413, N_("At most %(count)s files at once."), count=limits.max_count)


def check(files: list[Upload], limits: Limits) -> list[Checked]:
    if not files:
        raise Refused(413, N_("No file was sent."))
    check_count(len(files), limits)
    checked = []
    for upload in files:
        if len(upload.content) > limits.max_bytes:
            raise Refused(
                413,
                N_("%(name)s is larger than %(mb)s MB."),
                name=upload.name[:100],
                mb=f"{limits.max_bytes / 2**20:g}",
            )
        found = sniff(upload.content[:16])
        if found is None:
            raise Refused(415, N_("%(name)s is not an image (PNG, JPEG, GIF, WebP) or a PDF."), name=upload.name[:100])
        checked.append(Checked(upload, *found))
    return checked


@dataclass(frozen=True, slots=True)
class StoredUpload:
    """A checked file whose bytes are in the store: what a message's Attachment row records."""

    name: str
    mime_type: str
    kind: AttachmentKind
    size: int
    sha256: str

    def row(self, message_id: int, stored_at: datetime | None = None) -> Attachment:
        return Attachment(
            message_id=message_id,
            kind=self.kind.value,
            file_name=self.name[:NAME_MAX],
            mime_type=self.mime_type,
            size=self.size,
            sha256=self.sha256,
            stored_at=stored_at or datetime.now(UTC),
        )


async def store(file_store: FileStore, files: list[Checked]) -> list[StoredUpload]:
    """The bytes into the store (written once per content: a retried upload adds no file)."""
    stored = []
    for item in files:
        saved = await asyncio.to_thread(file_store.put, item.upload.content)
        stored.append(StoredUpload(item.upload.name, item.mime_type, item.kind, saved.size, saved.sha256))
    return stored
