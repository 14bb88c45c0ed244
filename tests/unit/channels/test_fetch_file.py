"""Downloading what users sent, within the byte limit."""

from __future__ import annotations

import pytest

from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from domain.contracts import AttachmentKind, PermanentError, ProviderFileRef, RetryableError
from tests.fakes import Fault
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8


async def test_telegram_download(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    file_id = fake_telegram.add_file(PDF, file_path="documents/file_12.pdf")
    ref = ProviderFileRef(
        kind=AttachmentKind.DOCUMENT, file_id=file_id, file_name="invoice.pdf", mime_type="application/pdf"
    )
    assert await telegram.fetch_file(tg_creds, ref, max_bytes=10_000) == (PDF, "application/pdf", "invoice.pdf")
    photo = ProviderFileRef(kind=AttachmentKind.PHOTO, file_id=file_id)  # no name or MIME in the update
    assert await telegram.fetch_file(tg_creds, photo, max_bytes=10_000) == (PDF, "application/pdf", "file_12.pdf")
    [download] = fake_telegram.requests("file")[:1]
    assert download.path == "/file/bot***/documents/file_12.pdf"


async def test_telegram_size_limits(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    file_id = fake_telegram.add_file(PDF)
    declared = ProviderFileRef(kind=AttachmentKind.DOCUMENT, file_id=file_id, size=len(PDF))
    with pytest.raises(PermanentError, match="over the 100 limit"):
        await telegram.fetch_file(tg_creds, declared, max_bytes=100)
    assert fake_telegram.requests() == []  # refused without asking Telegram
    undeclared = ProviderFileRef(kind=AttachmentKind.DOCUMENT, file_id=file_id)
    with pytest.raises(PermanentError, match="over the 100 limit"):
        await telegram.fetch_file(tg_creds, undeclared, max_bytes=100)
    assert fake_telegram.requests("file") == []  # getFile's file_size was enough


async def test_telegram_unknown_file_and_location(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    with pytest.raises(PermanentError, match="invalid file_id"):
        await telegram.fetch_file(tg_creds, ProviderFileRef(kind=AttachmentKind.PHOTO, file_id="nope"), 1000)
    with pytest.raises(PermanentError, match="no file"):
        await telegram.fetch_file(tg_creds, ProviderFileRef(kind=AttachmentKind.LOCATION, data={"latitude": 1.0}), 1000)


async def test_telegram_download_failure_is_retryable(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    file_id = fake_telegram.add_file(PDF)
    fake_telegram.fail_next(Fault.UNAVAILABLE, method="file")
    with pytest.raises(RetryableError):
        await telegram.fetch_file(tg_creds, ProviderFileRef(kind=AttachmentKind.DOCUMENT, file_id=file_id), 10_000)


async def test_max_download(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    url = fake_max.add_file(PDF, file_name="dogovor.pdf", mime_type="application/pdf")
    ref = ProviderFileRef(kind=AttachmentKind.DOCUMENT, url=url)
    assert await max_adapter.fetch_file(max_creds, ref, max_bytes=10_000) == (PDF, "application/pdf", "dogovor.pdf")
    [download] = fake_max.requests("files")
    assert download.authorization is None  # signed CDN URL: our token stays home


async def test_max_download_limit_while_streaming(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    url = fake_max.add_file(PDF)
    with pytest.raises(PermanentError) as info:
        await max_adapter.fetch_file(max_creds, ProviderFileRef(kind=AttachmentKind.DOCUMENT, url=url), max_bytes=1000)
    assert info.value.provider_code == 413
    with pytest.raises(PermanentError, match="no URL"):
        await max_adapter.fetch_file(max_creds, ProviderFileRef(kind=AttachmentKind.STICKER), 1000)
    with pytest.raises(PermanentError, match="HTTP 404"):
        await max_adapter.fetch_file(
            max_creds, ProviderFileRef(kind=AttachmentKind.PHOTO, url=f"{fake_max.base_url}/files/999"), 1000
        )
