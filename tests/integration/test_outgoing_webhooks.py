"""Outgoing webhooks end to end: events written by ingest reach a receiver on loopback through
WebhookEndpointWorkflow and the real activities, on the session's PostgreSQL and Temporal.

Signatures are checked here with an HMAC written for the test, not with our signing code.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from domain.events import WebhookEndpointPaused
from domain.ids import webhook_endpoint_workflow_id
from domain.webhooks import WEBHOOK_ENDPOINT_WORKFLOW, DeliveryState, EndpointInput
from infra.models import RealtimeEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from infra.security import CredentialBox
from infra.temporal import WorkflowStarter
from services import webhooks
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.webhook_receiver import Received, WebhookReceiver
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker

BOX = CredentialBox(TEST_CREDENTIALS_KEY)
SUBSCRIBED = ["conversation.created", "message.created"]


def signed_by(secret: str, request: Received) -> bool:
    """The receiver's side, as the README tells integrators to write it."""
    timestamp = request.headers["x-switchboard-timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return any(
        hmac.compare_digest(expected, part.strip()) for part in request.headers["x-switchboard-signature"].split(",")
    )


async def _endpoint(factory, url: str) -> tuple[int, str]:
    async with factory() as db, db.begin():
        endpoint, secret = await webhooks.create_endpoint(
            db, BOX, webhooks.EndpointInput(name="CRM", url=url, events=SUBSCRIBED), operator_id=None
        )
        return endpoint.id, secret


async def _ingest_conversations(world, users: list[str], per_user: int) -> None:
    for n in range(per_user):
        for user in users:
            await ingest(world.factory, world.event(user, f"{user} says {n}"))


async def _queued_event_ids(factory, endpoint_id: int) -> list[int]:
    async with factory() as db:
        return list(
            (
                await db.scalars(
                    select(WebhookDelivery.event_id)
                    .where(WebhookDelivery.endpoint_id == endpoint_id)
                    .order_by(WebhookDelivery.event_id)
                )
            ).all()
        )


async def _delivered(factory, endpoint_id: int, expected: int) -> bool:
    """Every queued event recorded as delivered (the receiver has them before we record it)."""
    async with factory() as db:
        done = await db.scalar(
            select(func.count()).where(
                WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == DeliveryState.DELIVERED
            )
        )
    return done >= expected


def _per_conversation(requests: list[Received]) -> dict[int, list[int]]:
    order: dict[int, list[int]] = defaultdict(list)
    for request in requests:
        order[request.json["data"]["conversation_id"]].append(int(request.json["id"]))
    return order


async def test_a_receiver_that_fails_three_times_gets_every_event_once_in_order_per_conversation(
    world, temporal_client, app_settings, task_queue
):
    settings = app_settings.model_copy(
        update={"temporal_task_queue": task_queue, "webhook_retry_schedule": (timedelta(milliseconds=300),)}
    )
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as http:
        endpoint_id, first_secret = await _endpoint(world.factory, receiver.url)
        async with world.factory() as db, db.begin():
            rotated = await webhooks.rotate_secret(
                db, BOX, await db.get(WebhookEndpoint, endpoint_id), overlap=timedelta(hours=1), operator_id=None
            )
        receiver.fail_next(3)
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            await _ingest_conversations(world, ["ann", "bob", "cid"], per_user=4)
            await WorkflowStarter(temporal_client, task_queue).wake_webhook_endpoint(endpoint_id)
            queued = await _queued_event_ids(world.factory, endpoint_id)
            assert len(queued) == 3 + 12  # three conversations created, twelve messages
            await wait_until(lambda: _delivered(world.factory, endpoint_id, len(queued)), timeout=60)

    requests = receiver.received()
    assert [r.status for r in requests[:3]] == [500, 500, 500]
    accepted = receiver.accepted()
    assert sorted(int(r.json["id"]) for r in accepted) == queued  # each once, none missing
    for conversation, ids in _per_conversation(accepted).items():
        assert ids == sorted(ids), f"conversation {conversation} out of order: {ids}"
    for request in requests:
        # during the rotation's overlap both secrets sign
        assert signed_by(rotated, request) and signed_by(first_secret, request)
        assert request.headers["x-switchboard-event-id"] == request.json["id"]
    texts = [r.json["data"]["text"] for r in accepted if r.json["type"] == "message.created"]
    assert sorted(texts) == sorted(f"{u} says {n}" for u in ("ann", "bob", "cid") for n in range(4))
    assert {r.json["version"] for r in accepted} == {1}

    async with world.factory() as db:
        journal = (await db.scalars(select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id))).all()
        states = (
            await db.execute(
                select(WebhookDelivery.status, func.count())
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .group_by(WebhookDelivery.status)
            )
        ).all()
    assert sorted(a.outcome for a in journal).count("failed") == 3
    assert len([a for a in journal if a.outcome == "delivered"]) == len(queued)
    assert all(a.status_code in (200, 500) and a.correlation_id for a in journal)
    assert dict(states) == {DeliveryState.DELIVERED.value: len(queued)}


async def test_a_receiver_down_for_30_hours_ends_dead_lettered_and_redelivery_sends_everything(
    world, time_skipping_env, settings, task_queue
):
    env = time_skipping_env
    settings = settings.model_copy(update={"temporal_task_queue": task_queue})
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as http:
        receiver.down()
        endpoint_id, secret = await _endpoint(world.factory, receiver.url)
        await _ingest_conversations(world, ["dan", "eve"], per_user=3)
        queued = await _queued_event_ids(world.factory, endpoint_id)
        async with build_worker(env.client, settings, build_activities(world.factory, settings, http)):
            handle = await env.client.start_workflow(
                WEBHOOK_ENDPOINT_WORKFLOW,
                EndpointInput(endpoint_id=endpoint_id, watch_seconds=0),
                id=webhook_endpoint_workflow_id(endpoint_id),
                task_queue=task_queue,
            )
            # the session's time-skipping server is shared: a workflow left running would keep
            # its clock from skipping for the tests after this one
            try:
                await env.sleep(timedelta(hours=30))

                async with world.factory() as db:
                    endpoint = await db.get(WebhookEndpoint, endpoint_id)
                    states = set(
                        await db.scalars(
                            select(WebhookDelivery.status).where(WebhookDelivery.endpoint_id == endpoint_id)
                        )
                    )
                    alerts = (
                        await db.scalars(
                            select(RealtimeEvent.payload).where(RealtimeEvent.type == WebhookEndpointPaused.NAME)
                        )
                    ).all()
                assert endpoint.paused_at is not None and "failing since" in endpoint.pause_reason
                assert states == {DeliveryState.DEAD.value}
                assert [a["endpoint_id"] for a in alerts] == [endpoint_id]
                # retried on the schedule, not in a loop: at 0, then after 10 s, 1 m, 5 m, 15 m, 1 h, 3 h and
                # 12 h (16 h 21 m in), then once more right at 24 h
                async with world.factory() as db:
                    tries = (
                        await db.scalars(
                            select(WebhookAttempt.attempt)
                            .where(WebhookAttempt.event_id == queued[0])
                            .order_by(WebhookAttempt.id)
                        )
                    ).all()
                assert tries == list(range(1, 10))
                assert not receiver.accepted()

                receiver.up()
                async with world.factory() as db, db.begin():
                    again = await webhooks.redeliver(
                        db,
                        await db.get(WebhookEndpoint, endpoint_id),
                        webhooks.RedeliverInput(since=datetime.now(UTC) - timedelta(days=1)),
                        operator_id=None,
                    )
                assert again == len(queued)
                await handle.signal("wake")
                await wait_until(lambda: _delivered(world.factory, endpoint_id, len(queued)), timeout=60)
            finally:
                await handle.terminate()

    accepted = receiver.accepted()
    assert sorted(int(r.json["id"]) for r in accepted) == queued
    for ids in _per_conversation(accepted).values():
        assert ids == sorted(ids)
    assert all(signed_by(secret, r) for r in accepted)


@pytest.mark.parametrize("overlap_hours", [0, 1])
async def test_a_rotated_secret_signs_only_during_its_overlap(clean_db, overlap_hours):
    async with clean_db() as db, db.begin():
        endpoint, first = await webhooks.create_endpoint(
            db, BOX, webhooks.EndpointInput(name="x", url="https://example.com/h", events=SUBSCRIBED), operator_id=None
        )
        second = await webhooks.rotate_secret(
            db, BOX, endpoint, overlap=timedelta(hours=overlap_hours), operator_id=None
        )
    now = datetime.now(UTC)
    assert webhooks.active_secrets(BOX, endpoint, now)[0] == second
    assert (first in webhooks.active_secrets(BOX, endpoint, now)) == bool(overlap_hours)
    assert webhooks.active_secrets(BOX, endpoint, now + timedelta(hours=2)) == [second]


async def test_housekeeping_keeps_the_webhook_journal_and_events_for_the_retention_setting(world, settings):
    from activities.housekeeping import HousekeepingActivities

    endpoint_id, _ = await _endpoint(world.factory, "https://example.com/hooks")
    await _ingest_conversations(world, ["fay"], per_user=2)
    async with world.factory() as db, db.begin():
        events = (await db.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))).all()
        for n, event in enumerate(events):
            db.add(
                WebhookAttempt(
                    endpoint_id=endpoint_id,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    attempt=1,
                    outcome="delivered",
                    latency_ms=3,
                    correlation_id="c",
                )
            )
            if n == 0:  # the oldest is past the retention, with its journal
                event.created_at = datetime.now(UTC) - timedelta(days=settings.webhook_log_retention_days, hours=1)
        await db.flush()
        await db.execute(
            WebhookAttempt.__table__.update()
            .where(WebhookAttempt.event_id == events[0].event_id)
            .values(created_at=events[0].created_at)
        )
    purged = await HousekeepingActivities(world.factory, settings).purge_expired()
    assert (purged["webhook_events"], purged["webhook_attempts"]) == (1, 1)
    assert await _queued_event_ids(world.factory, endpoint_id) == sorted(e.event_id for e in events[1:])


@pytest.mark.parametrize(
    ("name", "url", "events", "inbox_id"),
    [
        ("", "https://example.com/h", SUBSCRIBED, None),
        ("CRM", "ftp://example.com/h", SUBSCRIBED, None),
        ("CRM", "https://", SUBSCRIBED, None),
        ("CRM", "https://example.com/h", [], None),
        ("CRM", "https://example.com/h", ["message.created", "operator.typing"], None),
        ("CRM", "https://example.com/h", SUBSCRIBED, 10**9),
    ],
)
async def test_an_endpoint_that_cannot_work_is_refused_and_nothing_is_kept(clean_db, name, url, events, inbox_id):
    from services.errors import Invalid

    async with clean_db() as db:
        with pytest.raises(Invalid):
            await webhooks.create_endpoint(
                db, BOX, webhooks.EndpointInput(name=name, url=url, events=events, inbox_id=inbox_id), operator_id=None
            )
        await db.rollback()
        assert (await db.scalars(select(WebhookEndpoint))).all() == []


async def test_events_written_while_no_worker_runs_and_across_a_worker_restart_arrive_each_in_order(
    world, temporal_client, app_settings, task_queue
):
    """A worker outage: what happens meanwhile waits in the endpoint's queue (PostgreSQL) and its
    workflow (Temporal), and the next worker delivers all of it; a worker stopped mid-drain hands
    over to the next one. At least once (a request answered just before the stop may be resent,
    as the README warns receivers), nothing missing, each conversation's events in order."""
    settings = app_settings.model_copy(
        update={"temporal_task_queue": task_queue, "webhook_retry_schedule": (timedelta(milliseconds=300),)}
    )
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as http:
        endpoint_id, secret = await _endpoint(world.factory, receiver.url)
        # no worker: the customers write, the endpoint is woken, nothing can be sent
        await _ingest_conversations(world, ["ann", "bob"], per_user=3)
        await WorkflowStarter(temporal_client, task_queue).wake_webhook_endpoint(endpoint_id)
        assert receiver.received() == []
        receiver.down()  # the first worker meets a failing receiver and is stopped while it retries
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            await wait_until(lambda: len(receiver.received()) >= 2, timeout=30)
        await _ingest_conversations(world, ["cid"], per_user=2)  # written while no worker runs
        receiver.up()
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            queued = await _queued_event_ids(world.factory, endpoint_id)
            assert len(queued) == 3 + 3 * 2 + 2  # three conversations created, eight messages
            await wait_until(lambda: _delivered(world.factory, endpoint_id, len(queued)), timeout=60)
        await temporal_client.get_workflow_handle(webhook_endpoint_workflow_id(endpoint_id)).terminate()

    accepted = receiver.accepted()
    assert sorted({int(r.json["id"]) for r in accepted}) == queued  # every event, none missing
    for conversation, ids in _per_conversation(accepted).items():
        first_seen = list(dict.fromkeys(ids))
        assert first_seen == sorted(first_seen), f"conversation {conversation} out of order: {ids}"
    assert all(signed_by(secret, r) for r in accepted)
