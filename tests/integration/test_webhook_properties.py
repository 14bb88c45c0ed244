"""Property: whatever body a provider (or anyone holding the secret) posts, the webhook answers
2xx or 4xx, never 5xx.

Bodies are the recorded Telegram and MAX payloads, mutated the ways a buggy or hostile sender
would: fields dropped or added from other kinds of update, values swapped for other types,
huge, negative or fractional numbers, nulls, long and NUL-laden strings, deep nesting. Each is
posted to the real route of the real app (in-process ASGI, the session's PostgreSQL and the
real ingest), so a body that parses goes all the way to the database.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select

from api import create_app
from domain.enums import ChannelKind
from infra.models import Inbox, Message
from infra.security import CredentialBox
from infra.settings import Settings
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.unit.channels.support import PAYLOADS

EXAMPLES = 5000
SECRET = "s3cret-webhook_token"
HEADERS = {
    ChannelKind.TELEGRAM: {"X-Telegram-Bot-Api-Secret-Token": SECRET, "content-type": "application/json"},
    ChannelKind.MAX: {"X-Max-Bot-Api-Secret": SECRET, "content-type": "application/json"},
}
SAMPLES = {
    kind: [json.loads(path.read_text()) for path in sorted((PAYLOADS / kind.value).glob("*.json"))] for kind in HEADERS
}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {key for child in value.values() for key in _keys(child)}
    if isinstance(value, list):
        return {key for child in value for key in _keys(child)}
    return set()


# Field names of every recorded payload, so a mutation can add one where it does not belong
# (a `photo` into a callback, a `sender` into a user).
KEYS = {kind: sorted({key for sample in samples for key in _keys(sample)}) for kind, samples in SAMPLES.items()}

NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63) - 1, 10**20, 10**25, 10**300]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, -0.0, 1e20, 1e25, 1e308, -1e308, 1.7e-308]),
)
STRINGS = st.one_of(
    st.text(max_size=30),
    # longer than any column; built, not drawn character by character, which is slow
    st.builds(lambda c, n: c * n, st.characters(), st.integers(min_value=190, max_value=700)),
    st.sampled_from(["", "\x00", "a\x00b", "\ud800", "/start", "/start " + "x" * 300, "🙂" * 400, "\u202e"]),
    # values the parsers branch on
    st.sampled_from(["kicked", "member", "private", "group", "forward", "image", "file", "location", "contact"]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, STRINGS)
# Flat containers only: "nest" and "graft" below make the deep and the real-shaped ones.
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["id", "file_id", "user_id", "type", "text", "x"]), SCALARS, max_size=3),
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every place in `value`, down to where real payloads end (not into a nesting we made)."""
    found = [path]
    if len(path) < 8:
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            found += _paths(child, (*path, key))
    return found


def _at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def _nested(depth: int, leaf: Any) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


# Strategies built once: building one per draw was most of the generation time.
CHOICE = st.integers(min_value=0, max_value=2**16)
MUTATIONS = st.integers(min_value=0, max_value=3)  # 0: the recording as it is (renumbered)
OPERATIONS = st.sampled_from(["replace", "replace", "drop", "add", "nest", "graft"])
DEPTHS = st.integers(min_value=1, max_value=260)  # past the parser's limit of 200 now and then
SAMPLED = {kind: st.sampled_from(samples) for kind, samples in SAMPLES.items()}
NEW_KEYS = {kind: st.sampled_from(keys) for kind, keys in KEYS.items()}


def _pick(draw: st.DrawFn, options: list) -> Any:
    return options[draw(CHOICE) % len(options)]


# Ids of updates, messages, users and chats: renumbered, so a body that still parses is a new
# message, contact or conversation to the database and not a duplicate of the recording.
ID_KEYS = frozenset({"update_id", "message_id", "mid", "callback_id", "id", "user_id", "chat_id"})
RENUMBER = st.one_of(st.none(), st.integers(min_value=1, max_value=2**40))


def _renumbered(value: Any, n: int) -> Any:
    if isinstance(value, dict):
        return {key: (_fresh(child, n) if key in ID_KEYS else _renumbered(child, n)) for key, child in value.items()}
    if isinstance(value, list):
        return [_renumbered(child, n) for child in value]
    return value


def _fresh(value: Any, n: int) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value + n if value >= 0 else value - n
    return f"{value}-{n}" if isinstance(value, str) else _renumbered(value, n)


@st.composite
def _mutated(draw: st.DrawFn, kind: ChannelKind) -> Any:
    n = draw(RENUMBER)
    sample = draw(SAMPLED[kind])
    body: Any = copy.deepcopy(sample) if n is None else _renumbered(sample, n)
    for _ in range(draw(MUTATIONS)):
        path = _pick(draw, _paths(body))
        target = _at(body, path)
        operation = draw(OPERATIONS)
        if operation == "add" and isinstance(target, dict):
            target[draw(NEW_KEYS[kind])] = draw(VALUES)
            continue
        if not path:
            continue  # the other operations change a field, not the update as a whole
        parent, last = _at(body, path[:-1]), path[-1]
        if operation == "drop":
            del parent[last]
        elif operation == "nest":
            parent[last] = _nested(draw(DEPTHS), target)
        elif operation == "graft":  # a real value of another field, of another shape
            donor = draw(SAMPLED[kind])
            parent[last] = copy.deepcopy(_at(donor, _pick(draw, _paths(donor))))
        else:
            parent[last] = draw(VALUES)
    return body


CUTS = st.sampled_from([None] * 8 + [1, 7, -1])


@st.composite
def _bodies(draw: st.DrawFn, kind: ChannelKind) -> bytes:
    content = json.dumps(draw(_mutated(kind)), ensure_ascii=draw(st.booleans())).encode(errors="surrogatepass")
    cut = draw(CUTS)
    return content if cut is None else content[:cut]  # now and then not JSON at all


class Poster:
    """The app with its lifespan (engine, adapters) in an event loop of this test's own, so the
    synchronous property can post from inside Hypothesis."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.inboxes: dict[ChannelKind, int] = {}
        self.statuses: Counter[int] = Counter()
        self._stack = AsyncExitStack()

    async def open(self) -> None:
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.http = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test")
        )
        box = CredentialBox(TEST_CREDENTIALS_KEY)
        async with self.app.state.sessionmaker() as db, db.begin():
            for kind in HEADERS:
                inbox = Inbox(
                    name=f"{kind.value} bot",
                    channel=kind,
                    credentials_encrypted=box.seal({"token": "123:token", "webhook_secret": SECRET}),
                )
                db.add(inbox)
                await db.flush()
                self.inboxes[kind] = inbox.id

    async def close(self) -> None:
        await self._stack.aclose()

    async def stored_messages(self) -> int:
        async with self.app.state.sessionmaker() as db:
            return await db.scalar(select(func.count()).select_from(Message))

    async def post(self, kind: ChannelKind, body: bytes) -> httpx.Response:
        response = await self.http.post(
            f"/webhooks/{kind.value}/{self.inboxes[kind]}", content=body, headers=HEADERS[kind]
        )
        self.statuses[response.status_code] += 1
        return response


PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same bodies on every run and in CI
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.mark.parametrize("kind", list(HEADERS), ids=lambda k: k.value)
def test_no_body_makes_the_webhook_answer_5xx(clean_db, settings: Settings, kind: ChannelKind):
    poster = Poster(settings)
    with asyncio.Runner() as loop:
        loop.run(poster.open())
        try:

            @PROPERTY
            @given(body=_bodies(kind))
            def no_5xx(body: bytes) -> None:
                response = loop.run(poster.post(kind, body))
                assert response.status_code < 500, (response.status_code, response.text, body[:2000])

            started = time.perf_counter()
            no_5xx()
            elapsed = time.perf_counter() - started
            stored = loop.run(poster.stored_messages())
        finally:
            loop.run(poster.close())
    posted = sum(poster.statuses.values())
    assert posted >= EXAMPLES
    # the bodies reached every outcome: stored, acknowledged unread, refused as no update
    assert {200, 400} <= set(poster.statuses) and stored > 0, (poster.statuses, stored)
    print(
        f"{kind.value}: {posted} bodies in {elapsed:.1f} s ({posted / elapsed:.0f}/s), "
        f"statuses {dict(sorted(poster.statuses.items()))}, {stored} messages stored"
    )
