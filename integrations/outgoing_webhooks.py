"""What an integrator's receiver gets: the versioned envelope, its signature headers, one POST.

X-Switchboard-Event-Id:  the event's id (stable across retries: dedupe on it)
X-Switchboard-Timestamp: Unix seconds of this attempt
X-Switchboard-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>, one per active
                         secret, comma-separated (two during a rotation's overlap)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp

from domain.webhooks import ENVELOPE_VERSION

EVENT_ID_HEADER = "X-Switchboard-Event-Id"
TIMESTAMP_HEADER = "X-Switchboard-Timestamp"
SIGNATURE_HEADER = "X-Switchboard-Signature"
CORRELATION_HEADER = "X-Switchboard-Correlation-Id"
EXCERPT_CHARS = 500
USER_AGENT = "Switchboard-Webhooks/1"


def envelope(event_id: int, event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The body, as bytes: what is signed is exactly what is sent."""
    body = {
        "id": str(event_id),
        "type": event_type,
        "version": ENVELOPE_VERSION,
        "created_at": created_at.isoformat(),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return ",".join("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets)


@dataclass(frozen=True, slots=True)
class Answer:
    ok: bool
    status_code: int | None  # None: no HTTP answer (refused, timed out, dropped)
    latency_ms: int
    excerpt: str  # the start of the answer's body, or what went wrong on the way


async def post(
    http: aiohttp.ClientSession,
    url: str,
    secrets: list[str],
    event_id: int,
    body: bytes,
    *,
    correlation_id: str,
    timeout: float,
) -> Answer:
    """One delivery attempt; any 2xx is accepted (a redirect is not followed: it fails). Never
    raises for the receiver's failures; reads at most the start of the answer."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(event_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secrets, timestamp, body),
        CORRELATION_HEADER: correlation_id,
    }
    began = time.monotonic()
    try:
        async with http.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
        ) as resp:
            excerpt = (await resp.content.read(EXCERPT_CHARS * 4)).decode(errors="replace")[:EXCERPT_CHARS]
            return Answer(200 <= resp.status < 300, resp.status, _ms(began), excerpt)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Answer(False, None, _ms(began), f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS])


def _ms(began: float) -> int:
    return int((time.monotonic() - began) * 1000)
