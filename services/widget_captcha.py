"""Proof of work for the widget, made and checked offline (ALTCHA v1 with the `altcha` package):
a stranger opening more sessions than a handful per address must first find the number whose
SHA-256 with the challenge's salt is the challenge; the widget solves it with crypto.subtle in
well under a second, a flood pays for every session. A solution is taken once."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import altcha

MAX_NUMBER = 50_000  # about 25,000 hashes on average: well under a second in a browser
LIFETIME = timedelta(minutes=10)


def challenge_key(signing_key: bytes) -> bytes:
    return hmac.new(signing_key, b"widget proof of work", hashlib.sha256).digest()


def new_challenge(key: bytes) -> dict[str, Any]:
    made = altcha.create_challenge_v1(
        algorithm="SHA-256", max_number=MAX_NUMBER, hmac_key=key, expires=datetime.now(UTC) + LIFETIME
    )
    return made.to_dict()


def solved(key: bytes, payload: str | None) -> str | None:
    """The solved challenge (to take it once), or None when `payload` is not a valid solution."""
    if not payload or len(payload) > 2000:
        return None
    ok, _ = altcha.verify_solution_v1(payload, key, check_expires=True)
    if not ok:
        return None
    return altcha.PayloadV1.from_base64(payload).challenge
