"""Logging for both processes: human-readable lines by default, one JSON object per line with
LOG_FORMAT=json; a correlation id on every record; phone numbers, e-mail addresses and tokens
masked before any handler sees them (seed 002); no line per HTTP request unless debugging (httpx
writes one at INFO for every call, so a long-polling worker wrote one per poll).

The correlation id follows a message: the api takes it from the request (`X-Request-ID`, or a
new one) and stores it on the message it creates (`messages.correlation_id`); the delivery and
outgoing-webhook activities bind it again while they work on that message and write it into
their journals.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

PER_REQUEST_LOGGERS = ("httpx", "httpcore")
_CORRELATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return secrets.token_hex(8)


def correlation_id() -> str | None:
    return _CORRELATION.get()


@contextmanager
def correlated(value: str | None) -> Iterator[None]:
    """Records logged inside carry `value` as their correlation id."""
    token = _CORRELATION.set(value)
    try:
        yield
    finally:
        _CORRELATION.reset(token)


# Order matters: tokens first (a bot token holds digits a phone pattern would half-match).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"), "***"),  # Telegram bot tokens
    (re.compile(r"\b(whsec|sb)_[A-Za-z0-9_-]{16,}"), r"\1_***"),  # webhook secrets, API tokens
    (re.compile(r"(?i)\b(bearer|authorization:?)\s+[^\s,;]+"), r"\1 ***"),
    (re.compile(r"(/rest/\d+/)[A-Za-z0-9]+"), r"\1***"),  # Bitrix24 inbound-webhook codes
    (re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}"), r"\1***@***"),
    # +7 999 123-45-67, +44 20 7946 0958, 8 (999) 123-45-67, 89991234567: keep the last two digits
    (re.compile(r"\+\d(?:[\s()-]*\d){8,13}"), "+***"),
    (re.compile(r"(?<![\d:/])[78][\s(-]*\d{3}[\s)-]*\d{3}[\s-]*\d{2}[\s-]*\d{2}(?!\d)"), "***"),
)


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


class MaskingFilter(logging.Filter):
    """Renders the message, masks it, and stamps the correlation id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "_masked", False):
            record.msg = mask(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
            record._masked = True
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = _CORRELATION.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "correlation_id", None):
            line["correlation_id"] = record.correlation_id
        if record.exc_text or record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(correlation)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        cid = getattr(record, "correlation_id", None)
        record.correlation = f" [{cid}]" if cid else ""
        return super().format(record)


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (a test runner swaps and closes its captures)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(level: str, fmt: str) -> None:
    """One handler on the root logger (uvicorn's and the SDK's records included), idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_switchboard", False):
            root.removeHandler(handler)
    handler = _Stderr()
    handler._switchboard = True  # type: ignore[attr-defined]
    handler.addFilter(MaskingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    debugging = logging.getLevelNamesMapping().get(level.upper(), logging.INFO) <= logging.DEBUG
    for name in PER_REQUEST_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debugging else logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print unmasked lines beside ours
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
