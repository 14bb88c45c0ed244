"""A raw Temporal figure for benchmarks to print beside their own, measured on the same server in
the same run: a signal-with-start of a trivial workflow that runs one trivial activity and ends
(DESIGN.md's "signal -> one activity done, saturated"), with the worker in this process."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, UnsandboxedWorkflowRunner, Worker

from bench.stack import bounded


@activity.defn(name="bench_noop")
async def noop(n: int) -> int:
    return n


@workflow.defn(name="BenchSignalToActivity")
class SignalToActivity:
    def __init__(self) -> None:
        self._n: int | None = None

    @workflow.signal(name="go")
    def go(self, n: int) -> None:
        self._n = n

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self._n is not None)
        return await workflow.execute_activity(noop, self._n, start_to_close_timeout=timedelta(seconds=30))


async def signal_to_activity_rate(client: Client, n: int = 500, concurrency: int = 50) -> float:
    """Workflows a second from signal-with-start to their one activity done, saturated."""
    queue = f"bench-raw-{uuid.uuid4()}"

    async def one(i: int) -> None:
        handle = await client.start_workflow(
            SignalToActivity.run, id=f"{queue}-{i}", task_queue=queue, start_signal="go", start_signal_args=[i]
        )
        await handle.result()

    async with Worker(
        client,
        task_queue=queue,
        workflows=[SignalToActivity],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(20),  # as worker.py
    ):
        began = time.perf_counter()
        await bounded(concurrency, [one(i) for i in range(n)])
        return n / (time.perf_counter() - began)
