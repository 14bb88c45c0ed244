"""Short announcements after an action ("Status: Away"): a toast in the layout's live region.

An HTMX request gets the toast as an `HX-Trigger` event that `static/cabinet.js` shows; a plain
form post (no JavaScript) gets it in a short-lived cookie that the next page renders once. The
cookie is signed with the session's secret, so nobody else can put words on an operator's page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from enum import StrEnum

from fastapi import Request
from fastapi.responses import Response

FLASH_COOKIE = "sb_flash"


class HxEvent(StrEnum):
    """Events the server announces through `HX-Trigger` (cabinet.js listens for these names)."""

    TOAST = "toast"


class ToastLevel(StrEnum):
    SUCCESS = "success"
    INFO = "info"
    ERROR = "error"


@dataclass(frozen=True)
class Toast:
    level: ToastLevel
    text: str  # already translated


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def trigger(response: Response, event: HxEvent, detail: object) -> None:
    """Add an event to the response's `HX-Trigger` header (JSON; ASCII-escaped, as headers must be)."""
    events = json.loads(response.headers.get("HX-Trigger") or "{}")
    events[event.value] = detail
    response.headers["HX-Trigger"] = json.dumps(events, ensure_ascii=True)


def toast(request: Request, response: Response, toast: Toast, *, secret: str) -> None:
    """Announce `toast` with the response; `secret` is the session's, signing the no-JS cookie."""
    if is_htmx(request):
        trigger(response, HxEvent.TOAST, {"level": toast.level.value, "text": toast.text})
        return
    payload = base64.urlsafe_b64encode(json.dumps(asdict(toast)).encode()).decode()
    response.set_cookie(
        FLASH_COOKIE,
        f"{payload}.{_signature(payload, secret)}",
        max_age=60,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.cookie_secure,
    )


def read_flash(request: Request, *, secret: str) -> Toast | None:
    """The toast a plain form post left for this page, if it is ours and well-formed."""
    payload, _, signature = request.cookies.get(FLASH_COOKIE, "").partition(".")
    if not payload or not hmac.compare_digest(signature, _signature(payload, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload))
        return Toast(ToastLevel(data["level"]), str(data["text"]))
    except (ValueError, KeyError, TypeError):
        return None


def _signature(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
