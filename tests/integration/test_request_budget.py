"""Request budgets in PostgreSQL (infra.ratelimit.admit): a burst at once, then the rate."""

import asyncio
from datetime import timedelta

from infra.ratelimit import admit, forget_idle


async def test_a_burst_is_admitted_then_the_rate_and_the_wait_is_told(db):
    verdicts = [await admit(db, "api:test", rate=2, burst=3) for _ in range(4)]
    assert verdicts[:3] == [None, None, None]
    wait = verdicts[3]
    assert timedelta(0) < wait <= timedelta(seconds=0.5)
    assert await admit(db, "api:other", rate=2, burst=3) is None  # keys are independent
    await asyncio.sleep(wait.total_seconds())  # the wait it told is the wait there is
    assert await admit(db, "api:test", rate=2, burst=3) is None
    assert await admit(db, "api:test", rate=2, burst=3) is not None


async def test_idle_budgets_are_forgotten_by_prefix(db):
    await admit(db, "api-auth:198.51.100.1", rate=1, burst=1)
    await admit(db, "telegram:1", rate=1, burst=1)
    assert await forget_idle(db, "api-auth:", timedelta(0)) == 0  # not whole yet: its second runs
    # as it will be in two seconds: whole, and forgotten; the other prefix is not touched
    assert await forget_idle(db, "api-auth:", timedelta(seconds=-2)) == 1
    assert await forget_idle(db, "api-auth:", timedelta(seconds=-2)) == 0
    assert await forget_idle(db, "telegram:", timedelta(seconds=-2)) == 1
