"""A trivial workflow for the harness tests (the sandbox wants workflows in their own module)."""

from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio import activity, workflow


class SampleInput(BaseModel):
    name: str
    wait: timedelta = timedelta(0)


class SampleOutput(BaseModel):
    greeting: str
    started: datetime
    finished: datetime


@activity.defn(name="greet")
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn
class SampleWorkflow:
    @workflow.run
    async def run(self, params: SampleInput) -> SampleOutput:
        started = workflow.now()
        if params.wait:
            await workflow.sleep(params.wait)
        greeting = await workflow.execute_activity(greet, params.name, start_to_close_timeout=timedelta(seconds=10))
        return SampleOutput(greeting=greeting, started=started, finished=workflow.now())
