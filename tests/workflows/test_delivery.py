"""DeliveryWorkflow's schedule under the time-skipping server, with stand-in activities."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.delivery import (
    FAIL_DELIVERY,
    PREPARE_DELIVERY,
    SEND_MESSAGE,
    DeliveryInput,
    DeliveryPlan,
    FailRequest,
    Outcome,
    PrepareRequest,
    SendOutcome,
    SendRequest,
)
from domain.ids import delivery_workflow_id
from setup.devstack import venv_binary
from tests.workflows.delivery_chat import Chat, Row
from tests.workflows.sample import SampleInput, SampleWorkflow, greet
from workflows.delivery import SEND_ATTEMPTS, DeliveryWorkflow


class Provider:
    """Answers each attempt from a script; stamps attempts with the (skipped) server clock."""

    def __init__(self, script: list[SendOutcome], *, predecessor: int | None = None) -> None:
        self.script = script
        self.attempts: list = []
        self.failed: list[str] = []
        self.predecessor = predecessor
        self.prepares = 0

    def activities(self) -> list:
        p = self

        @activity.defn(name=PREPARE_DELIVERY)
        async def prepare(request: PrepareRequest) -> DeliveryPlan:
            p.prepares += 1
            return DeliveryPlan(predecessor_id=p.predecessor, give_up_after=timedelta(hours=24))

        @activity.defn(name=SEND_MESSAGE)
        async def send(request: SendRequest) -> SendOutcome:
            p.attempts.append((request.attempt, activity.info().current_attempt_scheduled_time, request.sent_parts))
            return p.script[min(len(p.attempts) - 1, len(p.script) - 1)]

        @activity.defn(name=FAIL_DELIVERY)
        async def fail(request: FailRequest) -> SendOutcome:
            p.failed.append(request.reason)
            return SendOutcome(outcome=Outcome.FAILED, reason=request.reason)

        return [prepare, send, fail]


async def _run(env, task_queue: str, provider: Provider, message_id: int = 1) -> str:
    async with Worker(
        env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=provider.activities()
    ):
        return await env.client.execute_workflow(
            DeliveryWorkflow.run,
            DeliveryInput(message_id=message_id),
            id=f"delivery-{task_queue}",
            task_queue=task_queue,
        )


def _gaps(provider: Provider) -> list[float]:
    times = [t for _, t, _ in provider.attempts]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(times)]


async def test_retryable_errors_back_off_exponentially_to_10_minutes_then_give_up_at_24h(time_skipping_env, task_queue):
    provider = Provider([SendOutcome(outcome=Outcome.RETRYABLE, reason="502 Bad Gateway")])
    assert await _run(time_skipping_env, task_queue, provider) == "failed"
    gaps = _gaps(provider)
    assert [round(g) for g in gaps[:11]] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600]
    assert all(round(g) == 600 for g in gaps[10:])
    first, last = provider.attempts[0][1], provider.attempts[-1][1]
    assert timedelta(hours=23, minutes=50) <= last - first <= timedelta(hours=24)
    assert len(provider.failed) == 1 and "502 Bad Gateway" in provider.failed[0]


async def test_a_429_waits_exactly_retry_after(time_skipping_env, task_queue):
    provider = Provider(
        [
            SendOutcome(outcome=Outcome.RATE_LIMITED, retry_after=37, reason="Too Many Requests"),
            SendOutcome(outcome=Outcome.RATE_LIMITED, retry_after=5, reason="Too Many Requests"),
            SendOutcome(outcome=Outcome.SENT, sent_parts=["1:5"]),
        ]
    )
    assert await _run(time_skipping_env, task_queue, provider) == "sent"
    assert [round(g, 1) for g in _gaps(provider)] == [37.0, 5.0]


async def test_parts_already_sent_are_never_resent(time_skipping_env, task_queue):
    provider = Provider(
        [
            SendOutcome(outcome=Outcome.RETRYABLE, sent_parts=["1:1", "1:2"], reason="timeout on part 3"),
            SendOutcome(outcome=Outcome.SENT, sent_parts=["1:1", "1:2", "1:3"]),
        ]
    )
    assert await _run(time_skipping_env, task_queue, provider) == "sent"
    assert [parts for _, _, parts in provider.attempts] == [[], ["1:1", "1:2"]]


async def test_a_migrated_chat_is_retried_at_once_and_permanent_errors_stop(time_skipping_env, task_queue):
    provider = Provider(
        [
            SendOutcome(outcome=Outcome.MIGRATED, reason="group upgraded"),
            SendOutcome(outcome=Outcome.FAILED, reason="Bad Request: chat not found"),
        ]
    )
    assert await _run(time_skipping_env, task_queue, provider) == "failed"
    assert len(provider.attempts) == 2 and _gaps(provider)[0] < 1
    assert provider.failed == []  # the activity itself recorded the permanent failure


async def test_waits_for_its_predecessor_until_told(time_skipping_env, task_queue):
    provider = Provider([SendOutcome(outcome=Outcome.SENT)], predecessor=41)
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=provider.activities()
    ):
        handle = await time_skipping_env.client.start_workflow(
            DeliveryWorkflow.run, DeliveryInput(message_id=42), id=f"delivery-{task_queue}", task_queue=task_queue
        )
        await time_skipping_env.sleep(timedelta(minutes=2))
        await asyncio.sleep(0.2)
        # the signal wakes it; meanwhile it re-checked once, a minute in (then after 2, 4, ... minutes)
        assert provider.attempts == [] and provider.prepares == 2
        provider.predecessor = None
        await handle.signal(DeliveryWorkflow.predecessor_done)
        assert await handle.result() == "sent"
    assert len(provider.attempts) == 1


async def test_telling_a_successor_that_has_not_started_is_harmless(time_skipping_env, task_queue):
    provider = Provider([SendOutcome(outcome=Outcome.SENT, successor_id=999_999)])
    assert await asyncio.wait_for(_run(time_skipping_env, task_queue, provider), 30) == "sent"


async def test_our_own_rate_slot_is_kept_for_the_next_attempt_not_reserved_again(time_skipping_env, task_queue):
    from datetime import UTC, datetime

    slot = datetime(2030, 1, 1, tzinfo=UTC)
    provider = Provider(
        [
            SendOutcome(outcome=Outcome.RATE_LIMITED, retry_after=45, reason="our own rate limit", slot_at=slot),
            SendOutcome(outcome=Outcome.SENT),
        ]
    )
    requests: list[SendRequest] = []
    activities = provider.activities()

    @activity.defn(name=SEND_MESSAGE)
    async def send(request: SendRequest) -> SendOutcome:
        requests.append(request)
        return provider.script[len(requests) - 1]

    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[DeliveryWorkflow],
        activities=[activities[0], send, activities[2]],
    ):
        result = await time_skipping_env.client.execute_workflow(
            DeliveryWorkflow.run, DeliveryInput(message_id=1), id=f"delivery-{task_queue}", task_queue=task_queue
        )
    assert result == "sent"
    assert [r.slot_at for r in requests] == [None, slot]


async def test_a_send_that_stops_heartbeating_is_retried_long_before_its_start_to_close(time_skipping_env, task_queue):
    """A worker dying mid-send stops the heartbeats; the retry must not wait for the 90 s
    start-to-close timeout, with the chat's later replies queued behind it."""
    calls: list = []

    @activity.defn(name=SEND_MESSAGE)
    async def send(request: SendRequest) -> SendOutcome:
        info = activity.info()
        calls.append((info.attempt, info.current_attempt_scheduled_time))
        if info.attempt == 1:
            await asyncio.Event().wait()  # hangs without heartbeating, like a dead worker
        return SendOutcome(outcome=Outcome.SENT, sent_parts=["1:1"])

    provider = Provider([])
    activities = [a for a in provider.activities() if a.__temporal_activity_definition.name != SEND_MESSAGE]
    async with Worker(
        time_skipping_env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=[*activities, send]
    ):
        await time_skipping_env.client.execute_workflow(
            DeliveryWorkflow.run,
            DeliveryInput(message_id=1),
            id=f"delivery-{task_queue}",
            task_queue=task_queue,
        )
    assert [attempt for attempt, _ in calls] == [1, 2]
    retried_after = (calls[1][1] - calls[0][1]).total_seconds()
    assert retried_after < 30, f"retried {retried_after:.0f} s later: the heartbeat timeout did not apply"


# -- a conversation's queue never jams --------------------------------------------------------

_ids = itertools.count((uuid.uuid4().int % 10**9) * 1000)  # workflow ids are delivery-{id}: unique per session


@pytest.fixture(scope="module")
async def clock() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of these tests' own: they skip days, and on the shared one that
    fires the timers of workflows other tests left running, whose tasks (no worker polls them)
    then hold its time skipping for every later test."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server")), data_converter=pydantic_data_converter
    )
    yield env
    await env.shutdown()


def _sent(row: Row, now: datetime) -> SendOutcome:
    return SendOutcome(outcome=Outcome.SENT, sent_parts=[f"{row.id}:1"])


async def _start(env, task_queue: str, chat: Chat, message_id: int, **kwargs):
    chat.add(message_id, await env.get_current_time())
    return await env.client.start_workflow(
        DeliveryWorkflow.run,
        DeliveryInput(message_id=message_id, **kwargs),
        id=delivery_workflow_id(message_id),
        task_queue=task_queue,
    )


async def _result(handle, timeout: float = 60) -> str:
    """One at a time: waiting on several results at once unbalances the test server's time-skipping lock."""
    return await asyncio.wait_for(handle.result(), timeout)


async def test_a_30_hour_outage_fails_each_queued_reply_24_hours_after_it_was_written_in_order(clock, task_queue):
    env = clock
    outage_until = await env.get_current_time() + timedelta(hours=30)

    def provider(row: Row, now: datetime) -> SendOutcome:
        if now < outage_until:
            return SendOutcome(outcome=Outcome.RETRYABLE, reason="503 Service Unavailable")
        return _sent(row, now)

    chat = Chat(provider)
    ids = [next(_ids) for _ in range(5)]
    async with Worker(env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=chat.activities()):
        handles = []
        for message_id in ids:  # five replies to one chat, a minute apart
            handles.append(await _start(env, task_queue, chat, message_id))
            await env.sleep(timedelta(minutes=1))
        results = [await _result(h) for h in handles]

    assert results == ["failed"] * 5, [(r.id, r.status, r.final_at) for r in chat.rows.values()]
    rows = [chat.rows[i] for i in ids]
    for row in rows:
        held = row.final_at - row.created_at
        assert timedelta(hours=23, minutes=45) <= held <= timedelta(hours=24), (row.id, held)
        assert row.reason
    assert [r.final_at for r in rows] == sorted(r.final_at for r in rows)  # failed in the order written
    assert all(at < outage_until for _, at in chat.attempts)  # nothing tried after its give-up


async def test_a_terminated_predecessor_releases_its_successor(clock, task_queue):
    env = clock
    first, second = next(_ids), next(_ids)

    def provider(row: Row, now: datetime) -> SendOutcome:
        if row.id == first:
            return SendOutcome(outcome=Outcome.RETRYABLE, reason="502 Bad Gateway")
        return _sent(row, now)

    chat = Chat(provider)
    async with Worker(env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=chat.activities()):
        predecessor = await _start(env, task_queue, chat, first)
        successor = await _start(env, task_queue, chat, second)
        await env.sleep(timedelta(seconds=5))
        assert chat.rows[second].status == "queued"  # it waits behind the first
        terminated_at = await env.get_current_time()
        await predecessor.terminate("an admin terminated it")
        assert await _result(successor) == "sent"
    assert chat.rows[second].final_at - terminated_at <= timedelta(minutes=10)
    assert chat.rows[first].status == "queued"  # left for the sweep, which fails it at its give-up time


async def test_a_predecessor_whose_send_keeps_raising_fails_with_the_reason_and_releases_its_successor(
    clock, task_queue
):
    env = clock
    first, second = next(_ids), next(_ids)

    def provider(row: Row, now: datetime) -> SendOutcome:
        if row.id == first:
            raise FileNotFoundError(2, "No such file or directory", "/data/files/3f/3fa9c0")
        return _sent(row, now)

    chat = Chat(provider)
    async with Worker(env.client, task_queue=task_queue, workflows=[DeliveryWorkflow], activities=chat.activities()):
        handles = [await _start(env, task_queue, chat, first), await _start(env, task_queue, chat, second)]
        results = [await _result(h) for h in handles]
    assert results == ["failed", "sent"]
    failed = chat.rows[first]
    assert failed.status == "failed" and "FileNotFoundError" in failed.reason and "3fa9c0" in failed.reason
    tries = [at for message_id, at in chat.attempts if message_id == first]
    assert len(tries) == SEND_ATTEMPTS
    assert tries[-1] - tries[0] < timedelta(minutes=10)  # bounded: the chat is not held for long
    assert chat.rows[second].final_at >= failed.final_at


async def test_a_delivery_waiting_24_hours_keeps_a_small_history_and_gives_up_on_time(clock, task_queue):
    env = clock
    first, second = next(_ids), next(_ids)
    chat = Chat(_sent)
    chat.add(first, await env.get_current_time())
    async with Worker(
        env.client,
        task_queue=task_queue,
        workflows=[DeliveryWorkflow, SampleWorkflow],
        activities=[*chat.activities(), greet],
    ):
        # the predecessor's delivery runs for days (it sleeps): it never finishes the first message
        held = await env.client.start_workflow(
            SampleWorkflow.run,
            SampleInput(name="held", wait=timedelta(days=3)),
            id=delivery_workflow_id(first),
            task_queue=task_queue,
        )
        try:
            waiting = await _start(env, task_queue, chat, second)
            assert await _result(waiting) == "failed"
            history = await waiting.fetch_history()
        finally:
            await held.terminate("test over")
    row = chat.rows[second]
    assert timedelta(hours=24) <= row.final_at - row.created_at <= timedelta(hours=24, seconds=5)
    assert str(first) in row.reason
    print(f"\nhistory of a delivery that waited 24 h for its predecessor: {len(history.events)} events")
    assert len(history.events) < 1_000  # re-checking every 30 s made ~17,000
