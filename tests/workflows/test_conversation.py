"""ConversationWorkflow under the time-skipping server, with stand-in activities."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.conversation import (
    ACTION_REFUSED,
    ESCALATE_CONVERSATION,
    NOTIFY,
    RESOLVE_IF_INACTIVE,
    TRANSFER_CONVERSATION,
    ConversationInput,
    ConversationNotice,
    ConversationState,
    InactivityCheck,
    InactivityRequest,
    InboxPolicy,
    NoticeKind,
)
from domain.enums import ConversationStatus
from tests.workflows.standins import Branch
from workflows.conversation import ConversationWorkflow


async def eventually(check: Callable[[], object], timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def conversation(
    env: WorkflowEnvironment, branch: Branch, task_queue: str, *, params: ConversationInput | None = None
) -> AsyncIterator[WorkflowHandle]:
    branch.clock = env.get_current_time
    async with Worker(
        env.client, task_queue=task_queue, workflows=[ConversationWorkflow], activities=branch.activities()
    ):
        handle = await env.client.start_workflow(
            ConversationWorkflow.run,
            params or ConversationInput(conversation_id=branch.conversation_id),
            id=f"conversation-{task_queue}",
            task_queue=task_queue,
            start_signal=NOTIFY,
            start_signal_args=[ConversationNotice(outbox_id=1, kind=NoticeKind.STARTED)],
        )
        try:
            yield handle
        finally:  # also when the test failed: a running workflow would outlive its test
            with suppress(RPCError):  # already completed is fine
                await handle.terminate()


async def state(handle: WorkflowHandle) -> ConversationState:
    return await handle.query(ConversationWorkflow.current_state)


async def until_state(handle: WorkflowHandle, check: Callable[[ConversationState], bool], timeout: float = 10) -> None:
    """Wait until the workflow's own state satisfies `check` (it has applied what was sent)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check(await state(handle)):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"workflow state not reached: {await state(handle)}")
        await asyncio.sleep(0.02)


async def test_escalation_fires_at_the_configured_time_not_a_second_before(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=4))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        ((first, assigned_at),) = branch.kinds("assigned")
        assert first == 1
        await time_skipping_env.sleep(timedelta(minutes=3, seconds=59))
        await asyncio.sleep(0.3)
        assert branch.kinds("escalated") == [] and (await state(handle)).assignee_id == 1
        await time_skipping_env.sleep(timedelta(seconds=2))
        await eventually(lambda: branch.kinds("escalated"))
        ((target, escalated_at),) = branch.kinds("escalated")
        assert target == 2
        assert timedelta(minutes=4) <= escalated_at - assigned_at < timedelta(minutes=4, seconds=2)


async def test_opening_at_3_59_prevents_escalation_for_good(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2])
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await time_skipping_env.sleep(timedelta(minutes=3, seconds=59))
        branch.opened = True
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.OPENED, operator_id=1)
        )
        await time_skipping_env.sleep(timedelta(hours=2))
        await asyncio.sleep(0.3)
        s = await state(handle)
        assert s.opened and s.assignee_id == 1
        assert branch.kinds("escalated") == []


async def test_three_operator_cycle_then_pool_and_supervisor_alert(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2, 3], policy=InboxPolicy(escalation_minutes=4))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        for _ in range(3):
            await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("alert"))
        assert [v for v, _ in branch.kinds("escalated")] == [2, 3, None]
        assert [v for v, _ in branch.kinds("alert")] == [[1, 2, 3]]
        s = await state(handle)
        assert s.assignee_id is None and s.pool_exhausted

        # it stays in the pool (no more escalations) until the dispatcher assigns it
        await time_skipping_env.sleep(timedelta(hours=1))
        await asyncio.sleep(0.2)
        assert len(branch.kinds("escalated")) == 3
        branch.assignee = 2
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=5, kind=NoticeKind.ASSIGNED, operator_id=2)
        )
        await until_state(handle, lambda s: s.assignee_id == 2 and not s.pool_exhausted)
        # a fresh window for the new assignee: unopened, it escalates again 4 minutes later
        assert len(branch.kinds("escalated")) == 3
        await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: len(branch.kinds("alert")) == 2)
        assert [v for v, _ in branch.kinds("escalated")] == [2, 3, None, None]


async def test_a_duplicate_notice_is_applied_once(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2])
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        # a transfer applied twice would move the conversation twice
        transfer = ConversationNotice(outbox_id=7, kind=NoticeKind.TRANSFER, operator_id=1, target_operator_id=2)
        await handle.signal(ConversationWorkflow.notify, transfer)
        await handle.signal(ConversationWorkflow.notify, transfer)  # the relay sent it again
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=8, kind=NoticeKind.UNBLOCKED))
        await until_state(handle, lambda s: s.last_outbox_id == 8)  # notices apply in order: all three are done
        assert [v for v, _ in branch.kinds("transferred")] == [2]


async def test_resolve_asks_for_rating_and_closes_after_n_days(time_skipping_env, task_queue):
    branch = Branch(online=[1], policy=InboxPolicy(rating_mode="stars", resolved_close_days=2))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.RESOLVE, operator_id=1)
        )
        await eventually(lambda: branch.kinds("resolved"))
        await eventually(lambda: ("rating_request",) in [(v,) for v, _ in branch.kinds("system_message")])
        ((_, resolved_at),) = branch.kinds("resolved")
        await time_skipping_env.sleep(timedelta(days=2, minutes=1))
        await eventually(lambda: branch.kinds("closed"))
        ((_, closed_at),) = branch.kinds("closed")
        assert timedelta(days=2) <= closed_at - resolved_at < timedelta(days=2, minutes=2)
        await handle.result()  # a closed conversation's workflow completes


def _next_spring_forward(tz: ZoneInfo, after: datetime) -> datetime:
    """The local Sunday on which `tz` moves its clocks forward, after `after`."""
    day = after.astimezone(tz).date() + timedelta(days=1)
    while True:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        midnight = datetime(day.year, day.month, day.day, 0, tzinfo=tz)
        if noon.utcoffset() > midnight.utcoffset():
            return midnight
        day += timedelta(days=1)


async def test_working_hours_in_branch_timezone_across_spring_forward(time_skipping_env, task_queue):
    berlin = ZoneInfo("Europe/Berlin")
    now = await time_skipping_env.get_current_time()
    sunday = _next_spring_forward(berlin, now)
    saturday_evening = (sunday - timedelta(hours=4)).replace(tzinfo=berlin)  # Sat 20:00 CET
    await time_skipping_env.sleep(saturday_evening.astimezone(UTC) - (await time_skipping_env.get_current_time()))

    schedule = {"timezone": "Europe/Berlin", "weekly": {d: [("09:00", "18:00")] for d in range(7)}}
    branch = Branch(online=[1], schedule=schedule, policy=InboxPolicy(offline_text="We are closed"))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("system_message"))
        assert [v for v, _ in branch.kinds("system_message")] == ["offline"]
        # a second message the same night: no second offline text
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.OFF_HOURS_MESSAGE)
        )
        await time_skipping_env.sleep(timedelta(hours=1))
        await asyncio.sleep(0.2)
        assert len(branch.kinds("system_message")) == 1 and branch.kinds("assigned") == []

        await time_skipping_env.sleep(timedelta(hours=14))  # past 09:00 CEST on Sunday
        await eventually(lambda: branch.kinds("assigned"))
        ((_, assigned_at),) = branch.kinds("assigned")
        opening = datetime(sunday.year, sunday.month, sunday.day, 9, tzinfo=berlin).astimezone(UTC)
        assert opening.hour == 7  # 09:00 summer time, not 08:00 UTC of winter time
        assert opening <= assigned_at < opening + timedelta(seconds=5)


async def test_continue_as_new_keeps_state(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2, 3], policy=InboxPolicy(escalation_minutes=4))
    params = ConversationInput(conversation_id=branch.conversation_id, history_limit=30)
    async with conversation(time_skipping_env, branch, task_queue, params=params) as handle:
        first_run = (await handle.describe()).run_id
        await eventually(lambda: branch.kinds("assigned"))
        await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("escalated"))
        for n in range(3, 20):
            await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=n, kind=NoticeKind.UNBLOCKED))
        latest = time_skipping_env.client.get_workflow_handle(handle.id)
        for _ in range(100):
            s = await state(latest)
            if s.last_outbox_id == 19:
                break
            await asyncio.sleep(0.05)
        assert (await latest.describe()).run_id != first_run, "did not continue as new"
        assert s.assignee_id == 2 and s.timed_out == [1] and s.last_outbox_id == 19
        assert s.status == ConversationStatus.OPEN


async def test_inactive_conversation_is_resolved_then_closed(time_skipping_env, task_queue):
    branch = Branch(
        online=[1],
        policy=InboxPolicy(inactive_resolve_days=3, resolved_close_days=7),
        clock=time_skipping_env.get_current_time,
    )
    activities = [a for a in branch.activities() if a.__temporal_activity_definition.name != RESOLVE_IF_INACTIVE]

    @activity.defn(name=RESOLVE_IF_INACTIVE)
    async def resolve_if_inactive(request: InactivityRequest) -> InactivityCheck:
        branch.status = ConversationStatus.RESOLVED
        await branch.log("auto_resolved")
        return InactivityCheck(resolved=True)

    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[ConversationWorkflow],
        activities=[*activities, resolve_if_inactive],
    ):
        handle = await time_skipping_env.client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(conversation_id=1),
            id=f"conversation-{task_queue}",
            task_queue=task_queue,
            start_signal=NOTIFY,
            start_signal_args=[ConversationNotice(outbox_id=1, kind=NoticeKind.STARTED)],
        )
        await handle.result()  # resolved after 3 idle days, closed 7 days later: the workflow ends
    ((_, assigned_at),) = branch.kinds("assigned")
    ((_, resolved_at),) = branch.kinds("auto_resolved")
    ((_, closed_at),) = branch.kinds("closed")
    # counted from the start of the conversation, a moment before its assignment
    assert timedelta(days=3, seconds=-1) <= resolved_at - assigned_at < timedelta(days=3, minutes=1)
    assert timedelta(days=7) <= closed_at - resolved_at < timedelta(days=7, minutes=1)


async def test_a_refused_transfer_is_reported_and_the_conversation_lives_on(time_skipping_env, task_queue):
    refusal = ApplicationError("That operator was deactivated.", type=ACTION_REFUSED, non_retryable=True)
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=4), failing={TRANSFER_CONVERSATION: refusal})
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await handle.signal(
            ConversationWorkflow.notify,
            ConversationNotice(outbox_id=2, kind=NoticeKind.TRANSFER, operator_id=1, target_operator_id=2),
        )
        await eventually(lambda: branch.kinds("action_failed"))
        assert [v for v, _ in branch.kinds("action_failed")] == [
            ("transfer", 1, True, "That operator was deactivated.")
        ]
        assert (await state(handle)).assignee_id == 1  # as it was
        # and its life goes on: the escalation timer still runs
        await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("escalated"))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_an_action_that_raises_a_bug_is_reported_not_retried_for_ever_and_notices_still_apply(
    time_skipping_env, task_queue
):
    branch = Branch(
        online=[1, 2], policy=InboxPolicy(escalation_minutes=4), failing={ESCALATE_CONVERSATION: TypeError("bug")}
    )
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("action_failed"))
        ((action, operator, refused, reason),) = [v for v, _ in branch.kinds("action_failed")]
        assert (action, operator, refused) == ("escalate", None, False) and "bug" in reason
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.RESOLVE, operator_id=1)
        )
        await eventually(lambda: branch.kinds("resolved"))
        assert len(branch.kinds("action_failed")) == 1  # no tight loop of failing escalations


async def test_closing_a_conversation_the_customer_reopened_adopts_that_instead_of_asking_again(
    time_skipping_env, task_queue
):
    branch = Branch(online=[1], policy=InboxPolicy(resolved_close_days=2))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.RESOLVE, operator_id=1)
        )
        await until_state(handle, lambda s: s.status == ConversationStatus.RESOLVED)
        branch.status = ConversationStatus.OPEN  # the customer wrote; the REOPENED notice is still on its way
        await time_skipping_env.sleep(timedelta(days=2, minutes=1))
        await until_state(handle, lambda s: s.status == ConversationStatus.OPEN)
        assert len(branch.kinds("close_called")) == 1 and branch.kinds("closed") == []
        assert len(branch.kinds("reopened")) == 1  # reopened as the database has it: escalation restarts
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=3, kind=NoticeKind.REOPENED))
        await until_state(handle, lambda s: s.last_outbox_id == 3)
        await time_skipping_env.sleep(timedelta(days=3))
        assert len(branch.kinds("close_called")) == 1 and len(branch.kinds("reopened")) == 1


async def test_settings_changed_while_it_waits_reach_it(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=60))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        # the workflow's own moment of assignment: the stand-in's clock reads a little later
        await until_state(handle, lambda s: s.assigned_at is not None)
        assigned_at = (await state(handle)).assigned_at
        await time_skipping_env.sleep(timedelta(minutes=1))
        branch.policy = InboxPolicy(escalation_minutes=4)  # an admin saved the inbox
        branch.schedule = {"timezone": "UTC", "weekly": {d: [("00:00", "23:59")] for d in range(7)}}
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.SETTINGS_CHANGED)
        )
        await until_state(handle, lambda s: s.policy.escalation_minutes == 4 and s.schedule is not None)
        await time_skipping_env.sleep(timedelta(minutes=3, seconds=5))
        await eventually(lambda: branch.kinds("escalated"))
        ((_, escalated_at),) = branch.kinds("escalated")
        assert timedelta(minutes=4) <= escalated_at - assigned_at < timedelta(minutes=4, seconds=2)


async def test_a_snooze_until_a_time_holds_escalation_and_wakes_on_time(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=4))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        until = await time_skipping_env.get_current_time() + timedelta(hours=2)
        await handle.signal(
            ConversationWorkflow.notify,
            ConversationNotice(outbox_id=2, kind=NoticeKind.SNOOZE, operator_id=1, until=until),
        )
        await until_state(handle, lambda s: s.snoozed and s.snoozed_until == until)
        # unopened, it would escalate at 4 minutes: snoozed, it does not
        await time_skipping_env.sleep(timedelta(hours=1, minutes=59))
        await asyncio.sleep(0.3)
        assert branch.kinds("escalated") == [] and branch.kinds("woken") == []
        await time_skipping_env.sleep(timedelta(minutes=2))
        await eventually(lambda: branch.kinds("woken"))
        ((woken_until, woken_at),) = branch.kinds("woken")
        assert woken_until == until and until <= woken_at < until + timedelta(seconds=5)
        s = await state(handle)
        assert not s.snoozed and s.assignee_id == 1
        # awake and still unopened: a full escalation window from waking
        await time_skipping_env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("escalated"))
        ((target, escalated_at),) = branch.kinds("escalated")
        assert target == 2 and escalated_at - woken_at >= timedelta(minutes=4)


async def test_a_snooze_until_the_customer_writes_ends_with_the_wake_notice(time_skipping_env, task_queue):
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=4))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("assigned"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.SNOOZE, operator_id=1)
        )
        await until_state(handle, lambda s: s.snoozed and s.snoozed_until is None)
        await time_skipping_env.sleep(timedelta(days=2))
        await asyncio.sleep(0.3)
        assert branch.kinds("escalated") == [] and branch.kinds("woken") == []
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=3, kind=NoticeKind.WAKE))
        await until_state(handle, lambda s: not s.snoozed)
        assert branch.kinds("woken") == []  # the database woke it already: no activity


async def test_an_operators_reopen_sends_no_offline_text_a_customers_does(time_skipping_env, task_queue):
    # open one minute a day: out of hours nearly always, a new off-hours period every day
    schedule = {"timezone": "UTC", "weekly": {d: [("00:00", "00:01")] for d in range(7)}}
    branch = Branch(online=[1, 2], schedule=schedule, policy=InboxPolicy(offline_text="We are closed"))
    async with conversation(time_skipping_env, branch, task_queue) as handle:
        await eventually(lambda: branch.kinds("system_message"))  # the first message's offline text
        assert [v for v, _ in branch.kinds("system_message")] == ["offline"]
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.RESOLVE, operator_id=1)
        )
        await until_state(handle, lambda s: s.status == ConversationStatus.RESOLVED)
        # the next off-hours period: a customer's message would get the offline text again
        await time_skipping_env.sleep(timedelta(days=1))
        branch.status = ConversationStatus.OPEN
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=3, kind=NoticeKind.REOPEN, operator_id=2)
        )
        await until_state(handle, lambda s: s.status == ConversationStatus.OPEN and s.last_outbox_id == 3)
        s = await state(handle)
        assert s.assignee_id == 2 and s.opened
        assert len(branch.kinds("system_message")) == 1 and branch.kinds("reopened") == []
        # the customer's own reopen answers them
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=4, kind=NoticeKind.RESOLVE, operator_id=2)
        )
        await until_state(handle, lambda s: s.status == ConversationStatus.RESOLVED)
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=5, kind=NoticeKind.REOPENED))
        await until_state(handle, lambda s: s.status == ConversationStatus.OPEN and s.last_outbox_id == 5)
        await eventually(lambda: len(branch.kinds("system_message")) == 2)
