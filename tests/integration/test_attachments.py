"""Incoming files: FetchAttachmentsWorkflow downloads them from the fake providers into the
content-addressed store and records sha256, size and MIME on the attachment rows."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import select

from domain.enums import ChannelKind
from domain.files import FETCH_ATTACHMENTS_WORKFLOW, FetchAttachmentsInput, FetchReport
from domain.ids import files_workflow_id
from infra.files import FileStore
from infra.models import Attachment
from services.ingest import ingest
from tests.fakes import Fault
from tests.integration.channel_support import (  # noqa: F401
    Channels,
    channels,
)

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40  # 10 249 bytes
PHOTO = b"\xff\xd8\xff\xe0" + b"jpeg" * 500


async def _receive(env: Channels, channel: ChannelKind, inbox_id: int, update: dict) -> int:
    """The inbound path as a webhook or the poller runs it: parse, then ingest."""
    [event] = env.adapters[channel].parse_update(inbox_id, update, received_at=datetime.now(UTC))
    result = await ingest(env.factory, event)
    assert result.message_id is not None
    return result.message_id


async def _fetch(env: Channels, message_id: int, **params) -> FetchReport:
    return await env.client.execute_workflow(
        FETCH_ATTACHMENTS_WORKFLOW,
        FetchAttachmentsInput(message_id=message_id, **params),
        id=f"{files_workflow_id(message_id)}-{env.task_queue}",
        task_queue=env.task_queue,
        result_type=FetchReport,
    )


async def _attachments(env: Channels, message_id: int) -> list[Attachment]:
    async with env.factory() as db:
        return list(
            (
                await db.scalars(select(Attachment).where(Attachment.message_id == message_id).order_by(Attachment.id))
            ).all()
        )


def _stored_files(env: Channels) -> list[str]:
    return sorted(p.name for p in env.files.rglob("*") if p.is_file())


async def test_telegram_files_are_stored_once_by_content(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    doc_id = tg.add_file(PDF, file_path="documents/file_1.pdf")
    same_bytes_id = tg.add_file(PDF, file_path="documents/file_2.pdf")  # forwarded again
    doc = {
        "file_id": doc_id,
        "file_unique_id": "u1",
        "file_name": "invoice.pdf",
        "mime_type": "application/pdf",
        "file_size": len(PDF),
    }
    first = await _receive(
        env,
        ChannelKind.TELEGRAM,
        inbox_id,
        {"update_id": 1, **tg.make_message(1001, caption="the invoice", document=doc)},
    )
    second = await _receive(
        env,
        ChannelKind.TELEGRAM,
        inbox_id,
        {"update_id": 2, **tg.make_message(1001, caption="again", document=doc | {"file_id": same_bytes_id})},
    )
    located = await _receive(
        env,
        ChannelKind.TELEGRAM,
        inbox_id,
        {"update_id": 3, **tg.make_message(1001, location={"latitude": 55.75, "longitude": 37.61})},
    )

    async with env.worker():
        # the provider is away for the first download: the activity retries
        tg.fail_next(Fault.UNAVAILABLE, method="file")
        assert await _fetch(env, first, retry_initial_seconds=0.2) == FetchReport(stored=1)
        assert await _fetch(env, second) == FetchReport(stored=1)
        assert await _fetch(env, located) == FetchReport(skipped=1)  # a location has no file
        # fetching again changes nothing (a relay retry, a replay)
        assert await _fetch(env, first) == FetchReport(skipped=1)

    digest = hashlib.sha256(PDF).hexdigest()
    [a], [b] = await _attachments(env, first), await _attachments(env, second)
    for att in (a, b):
        assert (att.sha256, att.size, att.mime_type, att.fetch_error) == (digest, len(PDF), "application/pdf", None)
        assert att.stored_at is not None
    assert a.file_name == "invoice.pdf"
    store = FileStore.from_settings(env.settings)
    assert store.read(digest) == PDF and store.path_for(digest) == env.files / digest[:2] / digest
    assert _stored_files(env) == [digest]  # the same bytes, stored once
    assert len(tg.requests("file")) == 3  # one failed download, then one per message
    [loc] = await _attachments(env, located)
    assert (loc.kind, loc.stored_at, loc.sha256, loc.fetch_error) == ("location", None, None, None)


async def test_over_the_limit_or_gone_is_a_fetch_error_without_retries(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    big = {"file_id": tg.add_file(PDF), "file_unique_id": "big", "file_name": "big.pdf", "file_size": len(PDF)}
    photo = [{"file_id": tg.add_file(PHOTO), "file_unique_id": "p", "width": 90, "height": 90}]
    gone = {"file_id": "BQACAgIAAxkBAAI-no-such-file", "file_unique_id": "g", "file_name": "gone.pdf"}
    message_id = await _receive(
        env, ChannelKind.TELEGRAM, inbox_id, {"update_id": 1, **tg.make_message(1001, caption="three", document=big)}
    )
    gone_id = await _receive(
        env, ChannelKind.TELEGRAM, inbox_id, {"update_id": 2, **tg.make_message(1001, caption="gone", document=gone)}
    )
    photo_id = await _receive(
        env, ChannelKind.TELEGRAM, inbox_id, {"update_id": 3, **tg.make_message(1001, photo=photo)}
    )

    async with env.worker(env.activities(attachment_max_bytes=5_000)):
        assert await _fetch(env, message_id) == FetchReport(failed=1)
        assert await _fetch(env, gone_id) == FetchReport(failed=1)
        assert await _fetch(env, photo_id) == FetchReport(stored=1)  # under the limit
    [big_row], [gone_row], [photo_row] = [await _attachments(env, m) for m in (message_id, gone_id, photo_id)]
    assert big_row.stored_at is None and "over the 5000 limit" in big_row.fetch_error
    assert gone_row.stored_at is None and "invalid file_id" in gone_row.fetch_error
    assert len(tg.requests("getFile")) == 2  # gone once, photo once: no retries
    assert (photo_row.sha256, photo_row.size, photo_row.mime_type) == (
        hashlib.sha256(PHOTO).hexdigest(),
        len(PHOTO),
        "image/jpeg",
    )
    assert _stored_files(env) == [hashlib.sha256(PHOTO).hexdigest()]


async def test_max_file_by_url_and_giving_up_on_a_dead_file_host(channels: Channels):
    env, mx = channels, channels.max
    inbox_id = await env.inbox(ChannelKind.MAX)
    url = mx.add_file(PDF, file_name="dogovor.pdf", mime_type="application/pdf")
    file_att = {
        "type": "file",
        "payload": {"url": url, "token": "file-token-1"},
        "filename": "dogovor.pdf",
        "size": len(PDF),
    }
    dead_att = {"type": "image", "payload": {"url": url.rsplit("/", 1)[0] + "/999999", "token": "img-2", "photo_id": 2}}
    ok_id = await _receive(
        env, ChannelKind.MAX, inbox_id, mx.make_message(5005, 7007, "contract", attachments=[file_att])
    )
    dead_id = await _receive(
        env, ChannelKind.MAX, inbox_id, mx.make_message(5005, 7007, "photo", attachments=[dead_att])
    )
    async with env.worker():
        assert await _fetch(env, ok_id) == FetchReport(stored=1)
        mx.fail_next(Fault.UNAVAILABLE, count=None, method="files")
        report = await _fetch(env, dead_id, max_attempts=2, retry_initial_seconds=0.1)
    assert report == FetchReport(failed=1)
    [ok], [dead] = await _attachments(env, ok_id), await _attachments(env, dead_id)
    assert (ok.sha256, ok.size, ok.file_name) == (hashlib.sha256(PDF).hexdigest(), len(PDF), "dogovor.pdf")
    assert dead.stored_at is None and dead.fetch_error.startswith("gave up after 2 attempts")
    assert len(mx.requests("files")) == 1 + 2
