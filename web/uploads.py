"""Reading the files of a multipart form (services/uploads.py checks and stores them)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.datastructures import UploadFile

from channels.registry import file_max_bytes
from infra.models import Inbox
from infra.settings import Settings
from services.uploads import Limits, Upload, check_count, inbox_limits


def composer_limits(settings: Settings, inbox: Inbox, *, note: bool = False) -> Limits:
    """What the composer takes: a note is never delivered, so only a reply is bound by what its
    channel's provider accepts."""
    channel_max = None if note else file_max_bytes(inbox.channel)
    return inbox_limits(inbox, app_max_bytes=settings.attachment_max_bytes, channel_max_bytes=channel_max)


async def read_files(items: Iterable[object], limits: Limits) -> list[Upload]:
    """Each file read to one byte past the size limit: enough to refuse it, never more. Too many
    files are refused before any is read."""
    files = [item for item in items if isinstance(item, UploadFile) and (item.filename or item.size)]
    check_count(len(files), limits)
    return [Upload(item.filename or "file", await item.read(limits.max_bytes + 1)) for item in files]
