"""ConversationWorkflow: one per conversation (`conversation-{id}`), long-lived.

Routing, working hours, assignment, the escalation timer, transfer, resolve/close, rating and
auto-reply. It decides; activities write PostgreSQL (which the cabinet reads) and announce.
Notices arrive only through the outbox relay as the `notify` signal; the handler just queues
them, and the main loop applies them one at a time, so no handler races another.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.conversation import (
        Assignment,
        ConversationInput,
        ConversationNotice,
        ConversationState,
        InactivityCheck,
        NoticeKind,
        SystemMessageRequest,
    )
    from domain.enums import ConversationStatus, RatingMode
    from domain.rating import rating_prompt
    from domain.schedule import WorkingHours

# Activities are named, not imported: workflows never import I/O code.
LOAD = "load_conversation"
ASSIGN = "assign_operator"
ESCALATE = "escalate_conversation"
TRANSFER = "transfer_conversation"
RESOLVE = "resolve_conversation"
REOPEN = "reopen_conversation"
CLOSE = "close_conversation"
LOAD_SCHEDULE = "load_branch_schedule"
CHECK_INACTIVE = "resolve_if_inactive"
SYSTEM_MESSAGE = "send_system_message"
ALERT = "alert_supervisors"
DISPATCH = "dispatch_branch_backlog"

DB_CALL = {
    "start_to_close_timeout": timedelta(seconds=30),
    # the database may be briefly away; keep trying, the conversation waits
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
}
# Every activity here is one short database transaction, so it runs as a local activity: in the
# worker, recorded as a marker with the workflow task, without the server scheduling and
# dispatching an activity task. That is about a third of the server's work per new conversation,
# and the Temporal server shares our two cores with everything else. Runs recorded before this
# change replay on regular activities.
LOCAL_DB_CALLS = "local-db-calls"
# a pool without online operators re-checks now and then in case a notice was missed
POOL_RECHECK = timedelta(minutes=10)


@workflow.defn
class ConversationWorkflow:
    def __init__(self) -> None:
        self._inbox: list[ConversationNotice] = []
        self.s: ConversationState | None = None
        self._published: tuple | None = None

    @workflow.signal
    def notify(self, notice: ConversationNotice) -> None:
        self._inbox.append(notice)

    @workflow.query
    def state(self) -> ConversationState | None:
        return self.s

    @workflow.run
    async def run(self, params: ConversationInput) -> None:
        if params.state is not None:
            self.s = params.state
        else:
            self.s = await self._db(LOAD, params.conversation_id, result_type=ConversationState)
            self.s.inactivity_check_at = workflow.now() + timedelta(days=self.s.policy.inactive_resolve_days)
        self._publish()
        while self.s.status != ConversationStatus.CLOSED:
            await self._step()
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > params.history_limit:
                # apply every queued notice first: a signal left in memory would be lost.
                # The signal handler never awaits, so once the queue is empty nothing is in flight.
                while self._inbox:
                    await self._apply(self._inbox.pop(0))
                workflow.continue_as_new(
                    ConversationInput(conversation_id=self.s.conversation_id, state=self.s,
                                      history_limit=params.history_limit)
                )

    # -- the loop ---------------------------------------------------------------------------

    async def _step(self) -> None:
        s = self._state
        while self._inbox:
            await self._apply(self._inbox.pop(0))
        if s.status == ConversationStatus.CLOSED:
            return
        now = workflow.now()
        if s.status == ConversationStatus.RESOLVED:
            close_at = (s.resolved_at or now) + timedelta(days=s.policy.resolved_close_days)
            if now >= close_at:
                closed = await self._db(CLOSE, s.conversation_id, result_type=bool)
                if closed:
                    s.status = ConversationStatus.CLOSED
                    self._publish()
                return
            await self._wait(close_at)
            return

        if s.inactivity_check_at is not None and now >= s.inactivity_check_at:
            await self._check_inactive()
            return

        schedule = WorkingHours.model_validate(s.schedule) if s.schedule else None
        if schedule is not None and not schedule.is_open(now):
            await self._off_hours(schedule, now)
            return

        if s.assignee_id is None:
            if not s.pool_exhausted:
                await self._assign()
            if s.assignee_id is None:
                await self._wait(self._earliest(now + POOL_RECHECK, schedule, now))
                return

        if not s.opened:
            deadline = (s.assigned_at or now) + timedelta(minutes=s.policy.escalation_minutes)
            if now >= deadline:
                await self._escalate()
                return
            await self._wait(self._earliest(deadline, schedule, now))
            return
        await self._wait(self._earliest(None, schedule, now))

    def _earliest(self, candidate: datetime | None, schedule: WorkingHours | None, now: datetime) -> datetime | None:
        """Wake for the given deadline, the inactivity check, or closing time, whichever is first."""
        times = [t for t in (candidate, self._state.inactivity_check_at) if t is not None]
        if schedule is not None:
            closing = schedule.next_closing(now)
            if closing is not None:
                times.append(closing)
        return min(times) if times else None

    async def _wait(self, until: datetime | None) -> None:
        """Sleep until `until` or the next notice, whichever comes first."""
        timeout = None
        if until is not None:
            timeout = max((until - workflow.now()).total_seconds(), 0)
        try:
            await workflow.wait_condition(lambda: bool(self._inbox), timeout=timeout)
        except TimeoutError:
            pass

    # -- notices ----------------------------------------------------------------------------

    async def _apply(self, notice: ConversationNotice) -> None:
        s = self._state
        if notice.outbox_id and notice.outbox_id <= s.last_outbox_id:
            return  # the relay re-sent one we already applied
        s.last_outbox_id = max(s.last_outbox_id, notice.outbox_id)
        kind = notice.kind
        if kind in (NoticeKind.STARTED, NoticeKind.REOPENED, NoticeKind.OFF_HOURS_MESSAGE):
            if kind == NoticeKind.REOPENED and s.status == ConversationStatus.RESOLVED:
                s.status = ConversationStatus.OPEN
                s.resolved_at = None
                result = await self._db(REOPEN, s.conversation_id, result_type=Assignment)
                self._take(result)
            await self._answer_customer(first=kind == NoticeKind.STARTED)
        elif kind in (NoticeKind.BLOCKED, NoticeKind.UNBLOCKED):
            s.reachable = kind == NoticeKind.UNBLOCKED
        elif kind == NoticeKind.OPENED:
            if notice.operator_id is not None and notice.operator_id == s.assignee_id:
                s.opened = True  # for good: no escalation after the first opening
        elif kind == NoticeKind.ASSIGNED:
            if notice.operator_id is not None and notice.operator_id != s.assignee_id:
                s.pool_exhausted = False
                s.assignee_id = notice.operator_id
                s.assigned_at = workflow.now()
                s.opened = False
        elif kind == NoticeKind.TRANSFER:
            await self._transfer(notice)
        elif kind == NoticeKind.RESOLVE:
            await self._resolve(notice)
        self._publish()

    # -- actions ----------------------------------------------------------------------------

    async def _assign(self) -> None:
        s = self._state
        result = await self._db(ASSIGN, s.conversation_id, s.timed_out, result_type=Assignment)
        self._take(result)
        self._publish()

    async def _escalate(self) -> None:
        s = self._state
        if s.assignee_id is not None and s.assignee_id not in s.timed_out:
            s.timed_out.append(s.assignee_id)
        result = await self._db(ESCALATE, s.conversation_id, s.assignee_id, s.timed_out, result_type=Assignment)
        if result.opened:
            s.opened = True  # opened just before the timer fired; the notice is on its way
            s.timed_out.remove(result.assignee_id)
            return
        self._take(result)
        if result.assignee_id is None:
            s.pool_exhausted = True
            await self._db(ALERT, s.conversation_id, s.timed_out)
        self._publish()

    async def _transfer(self, notice: ConversationNotice) -> None:
        s = self._state
        result = await self._db(
            TRANSFER, s.conversation_id, notice.operator_id, notice.target_operator_id, notice.target_branch_id,
            result_type=Assignment,
        )
        if result.branch_id != s.branch_id:
            s.schedule = await self._db(LOAD_SCHEDULE, result.branch_id)
        s.timed_out = []
        s.pool_exhausted = False
        self._take(result)

    async def _resolve(self, notice: ConversationNotice) -> None:
        s = self._state
        if s.status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
            return
        resolved = await self._db(RESOLVE, s.conversation_id, notice.operator_id, result_type=bool)
        if not resolved:
            return
        s.status = ConversationStatus.RESOLVED
        s.resolved_at = workflow.now()
        if s.policy.rating_mode != RatingMode.NONE:
            text = s.policy.rating_text or rating_prompt(s.policy.rating_mode)
            await self._system_message("rating_request", text, dedup=f"rating:{s.resolved_at.isoformat()}")
        if s.branch_id is not None:
            # the operator has one conversation less: the branch's waiting ones may move
            await self._db(DISPATCH, s.branch_id)

    async def _check_inactive(self) -> None:
        s = self._state
        check = await self._db(
            CHECK_INACTIVE, s.conversation_id, s.policy.inactive_resolve_days, result_type=InactivityCheck
        )
        floor = workflow.now() + timedelta(minutes=1)
        s.inactivity_check_at = max(check.next_check_at or floor, floor)
        if check.resolved:
            s.status = ConversationStatus.RESOLVED
            s.resolved_at = workflow.now()
            self._publish()

    async def _off_hours(self, schedule: WorkingHours, now: datetime) -> None:
        """Nothing is assigned and no escalation runs while the branch is closed."""
        s = self._state
        await self._wait(self._earliest(schedule.next_opening(now), None, now))
        if s.assignee_id is not None and not s.opened and schedule.is_open(workflow.now()):
            s.assigned_at = workflow.now()  # the assignee gets a full window from opening time

    async def _answer_customer(self, *, first: bool) -> None:
        """The offline text once per off-hours period, else the auto-reply on the first message."""
        s = self._state
        now = workflow.now()
        schedule = WorkingHours.model_validate(s.schedule) if s.schedule else None
        if schedule is not None and not schedule.is_open(now):
            period = schedule.off_hours_period_key(now)
            if s.policy.offline_text and period != s.offline_sent_for:
                s.offline_sent_for = period
                await self._system_message("offline", s.policy.offline_text, dedup=f"offline:{period}")
        elif first and s.policy.auto_reply and not s.auto_replied:
            s.auto_replied = True
            await self._system_message("auto_reply", s.policy.auto_reply, dedup="auto_reply")

    async def _system_message(self, purpose: str, text: str, *, dedup: str) -> None:
        s = self._state
        if not s.reachable:
            return
        await self._db(
            SYSTEM_MESSAGE,
            SystemMessageRequest(conversation_id=s.conversation_id, purpose=purpose, text=text, dedup=dedup),
        )

    # -- state helpers ----------------------------------------------------------------------

    async def _db(self, activity: str, *args: Any, result_type: type | None = None) -> Any:
        if workflow.patched(LOCAL_DB_CALLS):
            return await workflow.execute_local_activity(activity, args=args, result_type=result_type, **DB_CALL)
        return await workflow.execute_activity(activity, args=args, result_type=result_type, **DB_CALL)

    @property
    def _state(self) -> ConversationState:
        assert self.s is not None
        return self.s

    def _take(self, result: Assignment) -> None:
        """Adopt the database's assignment; a (re)assignment starts a new escalation window."""
        s = self._state
        s.assignee_id = result.assignee_id
        s.branch_id = result.branch_id
        if result.assignee_id is not None:
            s.assigned_at = workflow.now()
            s.opened = False

    def _publish(self) -> None:
        """Search attributes and memo, so supervisors can filter in the Temporal UI."""
        s = self._state
        updates = [
            sa.CHANNEL.value_set(s.channel),
            sa.CONVERSATION_STATUS.value_set(s.status.value),
            sa.BRANCH_ID.value_set(s.branch_id) if s.branch_id is not None else sa.BRANCH_ID.value_unset(),
            sa.ASSIGNEE_ID.value_set(s.assignee_id) if s.assignee_id is not None else sa.ASSIGNEE_ID.value_unset(),
        ]
        key = (s.channel, s.status, s.branch_id, s.assignee_id, s.contact_name)
        if key == self._published:
            return  # each upsert is a history event: only on change
        self._published = key
        workflow.upsert_search_attributes(updates)
        workflow.upsert_memo({"contact": s.contact_name})
