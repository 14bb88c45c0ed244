"""The Temporal harness itself: the same trivial workflow on the time-skipping and dev servers."""

import time
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from tests.workflows.sample import SampleInput, SampleWorkflow, greet


async def _run(client: Client, task_queue: str, params: SampleInput):
    async with Worker(client, task_queue=task_queue, workflows=[SampleWorkflow], activities=[greet]):
        return await client.execute_workflow(
            SampleWorkflow.run, params, id=f"sample-{task_queue}", task_queue=task_queue
        )


async def test_time_skipping_server_skips_a_day(time_skipping_env, task_queue):
    began = time.monotonic()
    out = await _run(time_skipping_env.client, task_queue, SampleInput(name="ann", wait=timedelta(days=1)))
    assert out.greeting == "hello ann"
    assert out.finished - out.started >= timedelta(days=1)
    assert time.monotonic() - began < 30  # skipped, not waited


async def test_dev_server_runs_it(temporal_client, task_queue):
    out = await _run(temporal_client, task_queue, SampleInput(name="bob"))
    assert out.greeting == "hello bob"
    assert out.finished >= out.started
