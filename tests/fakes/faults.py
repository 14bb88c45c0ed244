"""Scripted and random failures a fake provider answers instead of doing the work."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with retry_after
    SERVER_ERROR = "server_error"  # 500 in the provider's error shape
    BAD_GATEWAY = "bad_gateway"  # 502 HTML page, as a proxy in front of the API sends
    UNAVAILABLE = "unavailable"  # 503
    DROP = "drop"  # the connection closes in the middle of the answer
    SLOW = "slow"  # answer normally after `delay` s; the work is done even if the client gave up
    BLOCKED = "blocked"  # 403: Telegram "bot was blocked by the user", MAX chat.denied
    DEACTIVATED = "deactivated"  # 403: Telegram "user is deactivated"
    CHAT_NOT_FOUND = "chat_not_found"  # Telegram 400, MAX 404
    MIGRATED = "migrated"  # Telegram 400 with parameters.migrate_to_chat_id
    NOT_READY = "not_ready"  # MAX 400 attachment.not.ready

    @property
    def retryable(self) -> bool:
        return self in RETRYABLE_FAULTS


RETRYABLE_FAULTS = frozenset({Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE, Fault.DROP})


@dataclass(frozen=True, slots=True)
class FaultHit:
    """What one request gets instead of a normal answer."""

    fault: Fault
    retry_after: int = 1
    delay: float = 0.0
    migrate_to: str | None = None


@dataclass(slots=True)
class _Rule:
    hit: FaultHit
    remaining: int | None  # None: until cleared
    method: str | None
    chat_id: str | None
    skip: int  # matching requests to let through first

    def matches(self, method: str, chat_id: str | None) -> bool:
        return (self.method is None or self.method.lower() == method.lower()) and (
            self.chat_id is None or self.chat_id == chat_id
        )


@dataclass(slots=True)
class _Random:
    ratio: float
    rng: random.Random
    faults: tuple[Fault, ...]
    method: str | None


class FaultScript:
    """Thread-safe: tests script faults from their thread, the server takes them from its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._random: _Random | None = None

    def add(
        self, hit: FaultHit, count: int | None, method: str | None, chat_id: str | int | None, skip: int = 0
    ) -> None:
        with self._lock:
            self._rules.append(_Rule(hit, count, method, None if chat_id is None else str(chat_id), skip))

    def set_random(self, ratio: float, seed: int, faults: tuple[Fault, ...], method: str | None) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError("ratio must be within [0, 1]")
        with self._lock:
            self._random = _Random(ratio, random.Random(seed), faults, method)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._random = None

    def pending(self) -> int:
        """Scripted faults not yet taken by a request (a request takes its fault on arrival)."""
        with self._lock:
            return sum(rule.remaining or 1 for rule in self._rules)

    def take(self, method: str, chat_id: str | None) -> FaultHit | None:
        """The fault this request gets, if any: scripted rules first (in order), then chance."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, chat_id):
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._rules.remove(rule)
                    return rule.hit
            rnd = self._random
            if rnd and (rnd.method is None or rnd.method.lower() == method.lower()) and rnd.rng.random() < rnd.ratio:
                return FaultHit(rnd.rng.choice(rnd.faults))
            return None
