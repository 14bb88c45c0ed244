"""What a browser may upload: the inbox's limits capped by the deployment's and by the channel's
provider (each adapter's `file_max_bytes`), and files judged by their first bytes."""

from __future__ import annotations

import pytest

from channels.registry import file_max_bytes
from domain.contracts import AttachmentKind
from domain.enums import ChannelKind
from infra.models import Inbox
from infra.settings import Settings
from services.uploads import Limits, Refused, Upload, check, inbox_limits
from web.uploads import composer_limits

MB = 2**20


def _inbox(channel: ChannelKind, **settings) -> Inbox:
    return Inbox(name="bot", channel=channel, settings=settings)


def test_each_sending_channel_names_its_providers_file_limit():
    assert file_max_bytes(ChannelKind.TELEGRAM) == 50 * MB  # Bot API multipart upload
    assert file_max_bytes(ChannelKind.MAX) == 4 * 1024 * MB  # POST /uploads, multipart
    assert file_max_bytes(ChannelKind.WIDGET) is None  # our own store serves the visitor


@pytest.mark.parametrize(
    ("channel", "inbox_mb", "app_mb", "note", "expected_mb"),
    [
        (ChannelKind.TELEGRAM, 100, 200, False, 50),  # Telegram's 50 MB caps the inbox's 100
        (ChannelKind.TELEGRAM, 100, 200, True, 100),  # a note is never delivered
        (ChannelKind.TELEGRAM, 20, 200, False, 20),  # the inbox's own setting
        (ChannelKind.MAX, 100, 30, False, 30),  # the deployment's cap
        (ChannelKind.WIDGET, 100, 200, False, 100),
    ],
)
def test_the_composer_takes_the_inbox_limit_capped_by_deployment_and_channel(
    channel, inbox_mb, app_mb, note, expected_mb
):
    inbox = _inbox(channel, attachment_max_bytes=inbox_mb * MB, attachment_max_count=3)
    settings = Settings(attachment_max_bytes=app_mb * MB)
    assert composer_limits(settings, inbox, note=note) == Limits(expected_mb * MB, 3)


def test_an_inbox_without_settings_takes_the_defaults():
    assert inbox_limits(_inbox(ChannelKind.TELEGRAM), app_max_bytes=100 * MB) == Limits(20 * MB, 10)


def test_files_are_judged_by_their_first_bytes_and_the_limits():
    limits = Limits(max_bytes=MB // 2, max_count=2)
    png = Upload("a.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 8)  # the name says PDF; the bytes say PNG
    webp = Upload("b", b"RIFF\0\0\0\0WEBPVP8 ")
    assert [(c.mime_type, c.kind) for c in check([png, webp], limits)] == [
        ("image/png", AttachmentKind.PHOTO),
        ("image/webp", AttachmentKind.PHOTO),
    ]
    refusals = [
        ([], 413, "No file was sent."),
        ([png, png, png], 413, "At most 2 files at once."),
        ([Upload("big.pdf", b"%PDF-" + b"\0" * (MB // 2))], 413, "big.pdf is larger than 0.5 MB."),
        ([Upload("x.exe", b"MZ\x90\0")], 415, "x.exe is not an image (PNG, JPEG, GIF, WebP) or a PDF."),
    ]
    for files, status, detail in refusals:
        with pytest.raises(Refused) as refused:
            check(files, limits)
        assert (refused.value.status, str(refused.value)) == (status, detail)
