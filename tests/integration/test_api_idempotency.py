"""Idempotency-Key on the API's POSTs (seed 002): the same key and body within 72 hours answer
the first status and body again with one effect, also when both arrive at once (the second waits
for the first); another body is 422; keys are per token, expire, and are purged."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text, update

from activities.housekeeping import HousekeepingActivities
from domain.enums import ConversationStatus
from infra.models import Conversation, IdempotencyKey, Message
from tests.integration.api_support import assert_problem, client, make_scene
from tests.integration.conftest import wait_until


@pytest.fixture
async def scene(clean_db):
    return await make_scene(clean_db)


async def _messages(factory, conversation_id: int) -> list[str]:
    async with factory() as db:
        rows = await db.scalars(
            select(Message.text).where(Message.conversation_id == conversation_id).order_by(Message.id)
        )
        return list(rows.all())


def _send(scene, key: str, text: str = "Your order ships today"):
    return lambda http: http.post(
        f"/api/v1/conversations/{scene.my_pool}/messages", json={"text": text}, headers={"Idempotency-Key": key}
    )


async def test_the_same_key_and_body_replay_the_first_answer_with_one_effect(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        first = await _send(scene, "order-1")(http)
        again = await _send(scene, "order-1")(http)
        note = await http.post(
            f"/api/v1/conversations/{scene.my_pool}/notes", json={"text": "n"}, headers={"Idempotency-Key": "order-1n"}
        )
        note_again = await http.post(
            f"/api/v1/conversations/{scene.my_pool}/notes", json={"text": "n"}, headers={"Idempotency-Key": "order-1n"}
        )
    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # byte for byte
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    assert note_again.content == note.content
    assert await _messages(scene.factory, scene.my_pool) == ["hello from 0", "Your order ships today", "n"]


async def test_two_identical_requests_at_once_have_one_effect_and_the_same_answer(live_api, scene, engine):
    """The conversation's row is held locked, so the first request stops inside its work with
    the key claimed; the second must then be waiting on the key, not running alongside."""
    async with engine.connect() as holder:
        await holder.execute(text("BEGIN"))
        await holder.execute(text("SELECT id FROM conversations WHERE id = :id FOR UPDATE"), {"id": scene.my_pool})
        async with client(live_api.url, scene.writer) as a, client(live_api.url, scene.writer) as b:
            both = asyncio.gather(_send(scene, "at-once")(a), _send(scene, "at-once")(b))

            async def both_waiting() -> bool:
                waiting = await holder.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
                return waiting == 2

            await wait_until(both_waiting, timeout=20)
            await holder.execute(text("ROLLBACK"))
            one, other = await both
    assert one.status_code == other.status_code == 201
    assert one.content == other.content
    assert sorted(r.headers.get("idempotent-replayed", "") for r in (one, other)) == ["", "true"]
    assert (await _messages(scene.factory, scene.my_pool)).count("Your order ships today") == 1


async def test_the_same_key_with_another_request_is_422_and_changes_nothing(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        assert (await _send(scene, "k")(http)).status_code == 201
        other_body = await _send(scene, "k", text="Something else")(http)
        other_route = await http.post(
            f"/api/v1/conversations/{scene.my_pool}/notes",
            json={"text": "Your order ships today"},
            headers={"Idempotency-Key": "k"},
        )
    for refused in (other_body, other_route):
        assert assert_problem(refused, 422)["type"] == "urn:switchboard:problem:idempotency-key-reused"
    assert await _messages(scene.factory, scene.my_pool) == ["hello from 0", "Your order ships today"]


async def test_keys_are_per_token(live_api, scene):
    async with client(live_api.url, scene.writer) as mine, client(live_api.url, scene.everything) as theirs:
        assert (await _send(scene, "shared")(mine)).status_code == 201
        answer = await _send(scene, "shared")(theirs)
    assert answer.status_code == 201 and "idempotent-replayed" not in answer.headers
    assert (await _messages(scene.factory, scene.my_pool)).count("Your order ships today") == 2


async def test_a_refused_request_keeps_no_key(live_api, scene):
    async with scene.factory() as db, db.begin():
        await db.execute(
            update(Conversation).where(Conversation.id == scene.my_pool).values(status=ConversationStatus.CLOSED)
        )
    async with client(live_api.url, scene.writer) as http:
        assert_problem(await _send(scene, "retry-me")(http), 422)
        async with scene.factory() as db, db.begin():
            await db.execute(
                update(Conversation).where(Conversation.id == scene.my_pool).values(status=ConversationStatus.OPEN)
            )
        assert (await _send(scene, "retry-me")(http)).status_code == 201


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, "кириллица"])
async def test_a_malformed_key_is_a_validation_error(live_api, scene, key):
    async with client(live_api.url, scene.writer) as http:
        answer = await http.post(
            f"/api/v1/conversations/{scene.my_pool}/messages",
            json={"text": "hi"},
            headers=[("Idempotency-Key", key.encode())],
        )
    assert assert_problem(answer, 422)["errors"][0]["header"] == "idempotency-key"
    assert await _messages(scene.factory, scene.my_pool) == ["hello from 0"]


async def test_keys_expire_after_72_hours_and_housekeeping_purges_them(live_api, scene, app_settings):
    async with client(live_api.url, scene.writer) as http:
        first = await _send(scene, "old")(http)
        await _send(scene, "fresh")(http)
        async with scene.factory() as db:
            expires = await db.scalar(select(IdempotencyKey.expires_at).where(IdempotencyKey.key == "old"))
            created = await db.scalar(select(IdempotencyKey.created_at).where(IdempotencyKey.key == "old"))
        assert (expires - created).total_seconds() == 72 * 3600
        async with scene.factory() as db, db.begin():
            await db.execute(
                update(IdempotencyKey)
                .where(IdempotencyKey.key == "old")
                .values(expires_at=func.now() - text("interval '1 second'"))
            )
        # an expired key is a new request: it is carried out again
        later = await _send(scene, "old")(http)
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    async with scene.factory() as db, db.begin():
        await db.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "old")
            .values(expires_at=func.now() - text("interval '1 second'"))
        )
    purged = await HousekeepingActivities(scene.factory, app_settings).purge_expired()
    assert purged["idempotency_keys"] == 1
    async with scene.factory() as db:
        assert (await db.scalars(select(IdempotencyKey.key))).all() == ["fresh"]
