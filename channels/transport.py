"""HTTP calls shared by adapters: transport failures become typed errors, tokens stay out of logs."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from domain.contracts import DeliveryError, PermanentError, RateLimitedError, RetryableError

# Telegram puts the bot token in the path: /bot<token>/method and /file/bot<token>/path.
_TOKEN_IN_PATH = re.compile(r"/bot[^/\s\"']+/")
DEFAULT_RETRY_AFTER = 1.0


def mask_url(url: object) -> str:
    return _TOKEN_IN_PATH.sub("/bot***/", str(url))


class _MaskTokens(logging.Filter):
    """httpx logs every request URL at INFO; rewrite them before any handler sees a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(mask_url(a) if isinstance(a, httpx.URL | str) else a for a in record.args)
        record.msg = mask_url(record.msg) if isinstance(record.msg, str) else record.msg
        return True


_MASK = _MaskTokens()


def mask_tokens_in_httpx_logs() -> None:
    """Idempotent: install the masking filter on httpx's logger."""
    logger = logging.getLogger("httpx")
    if _MASK not in logger.filters:
        logger.addFilter(_MASK)


async def request(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One HTTP call; timeouts, refused and dropped connections raise RetryableError."""
    try:
        return await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timeout ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"connection error ({type(exc).__name__}: {mask_url(exc)})") from None


def retry_after_header(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def status_error(resp: httpx.Response, reason: str) -> DeliveryError:
    """Typed error for a non-2xx answer that carries no provider-specific error body."""
    status = resp.status_code
    if status == 429:
        return RateLimitedError(reason, retry_after=retry_after_header(resp) or DEFAULT_RETRY_AFTER)
    if status >= 500 or status == 408:
        return RetryableError(reason, provider_code=status)
    return PermanentError(reason, provider_code=status)


async def download(http: httpx.AsyncClient, url: str, max_bytes: int, **kwargs: Any) -> tuple[bytes, httpx.Headers]:
    """Stream a file, giving up as soon as it is known to exceed `max_bytes`."""
    try:
        async with http.stream("GET", url, **kwargs) as resp:
            if resp.status_code >= 300:
                raise status_error(resp, f"download failed: HTTP {resp.status_code}")
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise PermanentError(f"file is {declared} bytes, over the {max_bytes} limit", provider_code=413)
            buf = bytearray()
            async for chunk in resp.aiter_bytes():
                buf += chunk
                if len(buf) > max_bytes:
                    raise PermanentError(f"file is over the {max_bytes} byte limit", provider_code=413)
            return bytes(buf), resp.headers
    except httpx.TimeoutException as exc:
        raise RetryableError(f"timeout ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise RetryableError(f"connection error ({type(exc).__name__}: {mask_url(exc)})") from None
