"""The content-addressed file store: one file per distinct content, atomic, no path tricks."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from infra.files import FileStore


def test_same_bytes_are_stored_once_under_their_digest(tmp_path):
    store = FileStore(tmp_path / "files")
    first = store.put(b"hello")
    again = store.put(b"hello")
    other = store.put(b"world")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert (first.sha256, first.size, first.created) == (digest, 5, True)
    assert (again.sha256, again.created) == (digest, False)
    assert first.path == tmp_path / "files" / digest[:2] / digest
    assert store.read(digest) == b"hello" and store.read(other.sha256) == b"world"
    assert sorted(p.name for p in (tmp_path / "files").rglob("*") if p.is_file()) == sorted([digest, other.sha256])


def test_concurrent_writers_of_the_same_bytes_leave_one_whole_file(tmp_path):
    store = FileStore(tmp_path)
    content = bytes(range(256)) * 4096  # 1 MiB
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.put(content), range(16)))
    assert {r.sha256 for r in results} == {hashlib.sha256(content).hexdigest()}
    assert store.read(results[0].sha256) == content
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [results[0].sha256]  # no temp files left


def test_a_digest_is_the_only_name_it_accepts(tmp_path):
    store = FileStore(tmp_path)
    for bad in ("../../etc/passwd", "A" * 64, "ab", hashlib.sha256(b"x").hexdigest() + "/.."):
        with pytest.raises(ValueError):
            store.path_for(bad)
