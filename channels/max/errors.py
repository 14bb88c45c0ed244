"""MAX answers errors as `{code, message}` with HTTP 400/401/403/404/405/429/5xx."""

from __future__ import annotations

from typing import Any

import httpx

from channels.transport import DEFAULT_RETRY_AFTER, retry_after_header
from domain.contracts import PermanentError, RateLimitedError, RecipientBlockedError, RetryableError


class AttachmentNotReady(RetryableError):
    """An uploaded file is still being processed; sending again later succeeds."""


def result_or_raise(resp: httpx.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        body = None
    status = resp.status_code
    if 200 <= status < 300:
        if body is None:
            raise RetryableError(f"HTTP {status} without a JSON answer", provider_code=status)
        return body
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    reason = f"{code or status}: {message or 'HTTP ' + str(status)}"
    if code == "attachment.not.ready":
        raise AttachmentNotReady(reason, provider_code=code)
    if status == 429:
        # MAX documents no retry-after; honour the standard header when present.
        raise RateLimitedError(reason, retry_after=retry_after_header(resp) or DEFAULT_RETRY_AFTER)
    if status == 403 and code != "verify.token":
        # chat.denied / error.dialog.suspended: the user stopped the bot or we lost the chat
        raise RecipientBlockedError(reason, provider_code=code or status)
    if status >= 500:
        raise RetryableError(reason, provider_code=code or status)
    raise PermanentError(reason, provider_code=code or status)
