"""Telegram answers `{ok, result}` or `{ok: false, error_code, description, parameters?}`."""

from __future__ import annotations

from typing import Any

import httpx

from channels.transport import DEFAULT_RETRY_AFTER, retry_after_header
from domain.contracts import (
    ChatMigratedError,
    PermanentError,
    RateLimitedError,
    RecipientBlockedError,
    RetryableError,
)


def result_or_raise(resp: httpx.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # An HTML page from a proxy (502/503) or a garbled answer: nothing says it was refused.
        raise RetryableError(f"HTTP {resp.status_code} without a Telegram answer", provider_code=resp.status_code)
    if body.get("ok") is True:
        return body.get("result")
    code = body.get("error_code") or resp.status_code
    reason = str(body.get("description") or f"HTTP {resp.status_code}")
    params = body.get("parameters") or {}
    if params.get("migrate_to_chat_id") is not None:
        raise ChatMigratedError(reason, new_chat_id=str(params["migrate_to_chat_id"]))
    if code == 429:
        retry_after = params.get("retry_after") or retry_after_header(resp) or DEFAULT_RETRY_AFTER
        raise RateLimitedError(reason, retry_after=float(retry_after))
    if code == 403:
        # blocked by the user, user deactivated, kicked from the group: unreachable until they return
        raise RecipientBlockedError(reason, provider_code=code)
    if code >= 500:
        raise RetryableError(reason, provider_code=code)
    raise PermanentError(reason, provider_code=code)
