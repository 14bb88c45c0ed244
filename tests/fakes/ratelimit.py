"""Counts (and optionally enforces) the provider's rate limits on what a fake received."""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    CHAT = "chat"  # one window per chat
    GROUP = "group"  # one window per group chat (Telegram: negative chat ids)
    BOT = "bot"  # one window for the whole bot


@dataclass(frozen=True, slots=True)
class RateRule:
    name: str
    limit: int  # at most `limit` events ...
    window: float  # ... within any `window` seconds
    scope: Scope
    sends_only: bool = True  # count message sends only, or every request


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    retry_after: float  # seconds until the window has room again


class RateMeter:
    """Strict sliding windows: an event breaks a rule when `limit` accepted events of the same
    key already fall within the last `window` seconds. Not enforced, it only counts how many
    429s the real provider could have answered; enforced, those requests get a 429."""

    def __init__(self, rules: tuple[RateRule, ...], enforce: bool = False) -> None:
        self.rules = rules
        self.enforce = enforce
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._violations: dict[str, int] = {r.name: 0 for r in rules}

    def admit(self, chat_id: str | None, is_send: bool, now: float) -> Violation | None:
        """Record one request; returns the broken rule when enforcing (the request is refused)."""
        with self._lock:
            keys = [(rule, key) for rule in self.rules if (key := self._key(rule, chat_id, is_send)) is not None]
            broken: Violation | None = None
            for rule, key in keys:
                events = self._events[(rule.name, key)]
                while events and events[0] <= now - rule.window:
                    events.popleft()
                if len(events) >= rule.limit:
                    self._violations[rule.name] += 1
                    wait = events[len(events) - rule.limit] + rule.window - now
                    broken = broken or Violation(rule.name, max(wait, 0.0))
            if broken and self.enforce:
                return broken
            for rule, key in keys:
                self._events[(rule.name, key)].append(now)
            return None

    @staticmethod
    def _key(rule: RateRule, chat_id: str | None, is_send: bool) -> str | None:
        if rule.sends_only and not is_send:
            return None
        if rule.scope == Scope.BOT:
            return "bot"
        if chat_id is None or (rule.scope == Scope.GROUP and not chat_id.startswith("-")):
            return None
        return chat_id

    def violations(self) -> dict[str, int]:
        with self._lock:
            return dict(self._violations)

    def reset(self) -> None:
        with self._lock:
            self._events.clear()
            self._violations = {r.name: 0 for r in self.rules}


def whole_seconds(wait: float) -> int:
    """Telegram's retry_after is an integer number of seconds, at least 1."""
    return max(1, math.ceil(wait))
