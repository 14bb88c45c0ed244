"""Content-addressed file store: bytes live at files/<sha256[:2]>/<sha256>, written once.

The same bytes sent twice (a forwarded photo, a retried fetch) take one file on disk. A write
goes to a temporary file in the target folder, is flushed to disk, then renamed into place, so
a reader never sees half a file and two concurrent writers of the same bytes both succeed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.settings import Settings

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    path: Path
    created: bool  # False: the same bytes were already stored


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileStore:
        return cls(Path(settings.data_dir) / "files")

    def path_for(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):  # the digest names a path: nothing else may
            raise ValueError("not a lowercase hex sha256 digest")
        return self.root / sha256[:2] / sha256

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def put(self, content: bytes) -> StoredFile:
        """Blocking: call it through asyncio.to_thread from async code."""
        digest = hashlib.sha256(content).hexdigest()
        target = self.path_for(digest)
        if target.is_file() and target.stat().st_size == len(content):
            return StoredFile(digest, len(content), target, created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{digest[:8]}-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)  # atomic on one filesystem; same name, same bytes
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredFile(digest, len(content), target, created=True)
