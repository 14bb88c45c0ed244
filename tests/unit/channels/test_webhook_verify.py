"""The provider's secret header, compared in constant time."""

from __future__ import annotations

import httpx
import pytest
from starlette.datastructures import Headers

from channels.base import ChannelAdapter
from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from tests.unit.channels.support import SSL_CONTEXT

CREDS = {"token": "t", "webhook_secret": "s3cr3t_-value"}


@pytest.fixture(params=[TelegramAdapter, MaxAdapter], ids=["telegram", "max"])
def adapter(request: pytest.FixtureRequest) -> ChannelAdapter:
    return request.param(httpx.AsyncClient(verify=SSL_CONTEXT), "http://unused")


def test_good_secret(adapter: ChannelAdapter) -> None:
    assert adapter.verify_webhook({adapter.secret_header: "s3cr3t_-value"}, CREDS) is True


def test_header_name_is_case_insensitive(adapter: ChannelAdapter) -> None:
    assert adapter.verify_webhook({adapter.secret_header.lower(): "s3cr3t_-value"}, CREDS) is True
    raw = Headers(raw=[(adapter.secret_header.lower().encode(), b"s3cr3t_-value")])
    assert adapter.verify_webhook(raw, CREDS) is True


@pytest.mark.parametrize("value", ["wrong", "s3cr3t_-valu", "s3cr3t_-value ", "", "S3CR3T_-VALUE"])
def test_bad_secret(adapter: ChannelAdapter, value: str) -> None:
    assert adapter.verify_webhook({adapter.secret_header: value}, CREDS) is False


def test_missing_header(adapter: ChannelAdapter) -> None:
    assert adapter.verify_webhook({"Content-Type": "application/json"}, CREDS) is False


def test_the_other_providers_header_does_not_count(adapter: ChannelAdapter) -> None:
    other = {"X-Telegram-Bot-Api-Secret-Token", "X-Max-Bot-Api-Secret"} - {adapter.secret_header}
    assert adapter.verify_webhook({other.pop(): "s3cr3t_-value"}, CREDS) is False


@pytest.mark.parametrize("creds", [{"token": "t"}, {"token": "t", "webhook_secret": ""}])
def test_no_secret_configured_rejects_everything(adapter: ChannelAdapter, creds: dict[str, str]) -> None:
    assert adapter.verify_webhook({adapter.secret_header: ""}, creds) is False
    assert adapter.verify_webhook({}, creds) is False
