"""ConversationWorkflow: one per conversation (`conversation-{id}`), long-lived.

Routing, working hours, assignment, the escalation timer, transfer, resolve/close, rating and
auto-reply. It decides; activities write PostgreSQL (which the cabinet reads) and announce.
Notices arrive only through the outbox relay as the `notify` signal; the handler just queues
them, and the main loop applies them one at a time, so no handler races another.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

# Activities are named, not imported: workflows never import I/O code.
with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.conversation import (
        ALERT_SUPERVISORS,
        ASSIGN_OPERATOR,
        CLOSE_CONVERSATION,
        CONVERSATION_WORKFLOW,
        DISPATCH_BRANCH_BACKLOG,
        ESCALATE_CONVERSATION,
        LOAD_BRANCH_SCHEDULE,
        LOAD_CONVERSATION,
        NOTIFY,
        REOPEN_CONVERSATION,
        RESOLVE_CONVERSATION,
        RESOLVE_IF_INACTIVE,
        SEND_SYSTEM_MESSAGE,
        STATE_QUERY,
        TRANSFER_CONVERSATION,
        AlertRequest,
        Assignment,
        AssignRequest,
        BranchRef,
        ConversationInput,
        ConversationNotice,
        ConversationRef,
        ConversationState,
        EscalateRequest,
        InactivityCheck,
        InactivityRequest,
        NoticeKind,
        ResolveRequest,
        SystemMessageRequest,
        TransferRequest,
    )
    from domain.enums import ConversationStatus, RatingMode
    from domain.rating import rating_prompt
    from domain.schedule import WorkingHours

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


@workflow.defn(name=CONVERSATION_WORKFLOW)
class ConversationWorkflow:
    def __init__(self) -> None:
        self.pending_notices: list[ConversationNotice] = []
        self._state: ConversationState | None = None
        self._visible: tuple | None = None  # what the search attributes and memo show now

    @workflow.signal(name=NOTIFY)
    def notify(self, notice: ConversationNotice) -> None:
        self.pending_notices.append(notice)

    @workflow.query(name=STATE_QUERY)
    def current_state(self) -> ConversationState | None:
        return self._state

    @property
    def state(self) -> ConversationState:
        assert self._state is not None, "loaded at the start of run()"
        return self._state

    @workflow.run
    async def run(self, params: ConversationInput) -> None:
        if params.state is not None:
            self._state = params.state
        else:
            self._state = await self._db_call(
                LOAD_CONVERSATION,
                ConversationRef(conversation_id=params.conversation_id),
                result_type=ConversationState,
            )
            self._state.inactivity_check_at = workflow.now() + timedelta(days=self._state.policy.inactive_resolve_days)
        self._upsert_visibility()
        while self.state.status != ConversationStatus.CLOSED:
            await self._step()
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > params.history_limit:
                # apply every queued notice first: a signal left in memory would be lost.
                # The signal handler never awaits, so once the queue is empty nothing is in flight.
                while self.pending_notices:
                    await self._apply(self.pending_notices.pop(0))
                workflow.continue_as_new(
                    ConversationInput(
                        conversation_id=self.state.conversation_id, state=self.state, history_limit=params.history_limit
                    )
                )

    # -- the loop ---------------------------------------------------------------------------

    async def _step(self) -> None:
        state = self.state
        while self.pending_notices:
            await self._apply(self.pending_notices.pop(0))
        if state.status == ConversationStatus.CLOSED:
            return
        now = workflow.now()
        if state.status == ConversationStatus.RESOLVED:
            close_at = (state.resolved_at or now) + timedelta(days=state.policy.resolved_close_days)
            if now >= close_at:
                closed = await self._db_call(
                    CLOSE_CONVERSATION, ConversationRef(conversation_id=state.conversation_id), result_type=bool
                )
                if closed:
                    state.status = ConversationStatus.CLOSED
                    self._upsert_visibility()
                return
            await self._wait(close_at)
            return

        if state.inactivity_check_at is not None and now >= state.inactivity_check_at:
            await self._check_inactive()
            return

        schedule = WorkingHours.model_validate(state.schedule) if state.schedule else None
        if schedule is not None and not schedule.is_open(now):
            await self._off_hours(schedule, now)
            return

        if state.assignee_id is None:
            if not state.pool_exhausted:
                await self._assign()
            if state.assignee_id is None:
                await self._wait(self._earliest(now + POOL_RECHECK, schedule, now))
                return

        if not state.opened:
            deadline = (state.assigned_at or now) + timedelta(minutes=state.policy.escalation_minutes)
            if now >= deadline:
                await self._escalate()
                return
            await self._wait(self._earliest(deadline, schedule, now))
            return
        await self._wait(self._earliest(None, schedule, now))

    def _earliest(self, candidate: datetime | None, schedule: WorkingHours | None, now: datetime) -> datetime | None:
        """Wake for the given deadline, the inactivity check, or closing time, whichever is first."""
        times = [t for t in (candidate, self.state.inactivity_check_at) if t is not None]
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
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: bool(self.pending_notices), timeout=timeout)

    # -- notices ----------------------------------------------------------------------------

    async def _apply(self, notice: ConversationNotice) -> None:
        state = self.state
        if notice.outbox_id and notice.outbox_id <= state.last_outbox_id:
            return  # the relay re-sent one we already applied
        state.last_outbox_id = max(state.last_outbox_id, notice.outbox_id)
        kind = notice.kind
        if kind in (NoticeKind.STARTED, NoticeKind.REOPENED, NoticeKind.OFF_HOURS_MESSAGE):
            if kind == NoticeKind.REOPENED and state.status == ConversationStatus.RESOLVED:
                state.status = ConversationStatus.OPEN
                state.resolved_at = None
                result = await self._db_call(
                    REOPEN_CONVERSATION,
                    ConversationRef(conversation_id=state.conversation_id),
                    result_type=Assignment,
                )
                self._adopt_assignment(result)
            await self._answer_customer(first=kind == NoticeKind.STARTED)
        elif kind in (NoticeKind.BLOCKED, NoticeKind.UNBLOCKED):
            state.reachable = kind == NoticeKind.UNBLOCKED
        elif kind == NoticeKind.OPENED:
            if notice.operator_id is not None and notice.operator_id == state.assignee_id:
                state.opened = True  # for good: no escalation after the first opening
        elif kind == NoticeKind.ASSIGNED:
            if notice.operator_id is not None and notice.operator_id != state.assignee_id:
                state.pool_exhausted = False
                state.assignee_id = notice.operator_id
                state.assigned_at = workflow.now()
                state.opened = False
        elif kind == NoticeKind.TRANSFER:
            await self._transfer(notice)
        elif kind == NoticeKind.RESOLVE:
            await self._resolve(notice)
        self._upsert_visibility()

    # -- actions ----------------------------------------------------------------------------

    async def _assign(self) -> None:
        state = self.state
        result = await self._db_call(
            ASSIGN_OPERATOR,
            AssignRequest(conversation_id=state.conversation_id, exclude=state.timed_out),
            result_type=Assignment,
        )
        self._adopt_assignment(result)
        self._upsert_visibility()

    async def _escalate(self) -> None:
        state = self.state
        if state.assignee_id is not None and state.assignee_id not in state.timed_out:
            state.timed_out.append(state.assignee_id)
        result = await self._db_call(
            ESCALATE_CONVERSATION,
            EscalateRequest(
                conversation_id=state.conversation_id, current_assignee_id=state.assignee_id, timed_out=state.timed_out
            ),
            result_type=Assignment,
        )
        if result.opened:
            state.opened = True  # opened just before the timer fired; the notice is on its way
            state.timed_out.remove(result.assignee_id)
            return
        self._adopt_assignment(result)
        if result.assignee_id is None:
            state.pool_exhausted = True
            await self._db_call(
                ALERT_SUPERVISORS, AlertRequest(conversation_id=state.conversation_id, timed_out=state.timed_out)
            )
        self._upsert_visibility()

    async def _transfer(self, notice: ConversationNotice) -> None:
        state = self.state
        result = await self._db_call(
            TRANSFER_CONVERSATION,
            TransferRequest(
                conversation_id=state.conversation_id,
                by_operator_id=notice.operator_id,
                target_operator_id=notice.target_operator_id,
                target_branch_id=notice.target_branch_id,
            ),
            result_type=Assignment,
        )
        if result.branch_id != state.branch_id:
            state.schedule = await self._db_call(LOAD_BRANCH_SCHEDULE, BranchRef(branch_id=result.branch_id))
        state.timed_out = []
        state.pool_exhausted = False
        self._adopt_assignment(result)

    async def _resolve(self, notice: ConversationNotice) -> None:
        state = self.state
        if state.status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
            return
        resolved = await self._db_call(
            RESOLVE_CONVERSATION,
            ResolveRequest(conversation_id=state.conversation_id, by_operator_id=notice.operator_id),
            result_type=bool,
        )
        if not resolved:
            return
        state.status = ConversationStatus.RESOLVED
        state.resolved_at = workflow.now()
        if state.policy.rating_mode != RatingMode.NONE:
            text = state.policy.rating_text or rating_prompt(state.policy.rating_mode)
            await self._system_message("rating_request", text, dedup=f"rating:{state.resolved_at.isoformat()}")
        if state.branch_id is not None:
            # the operator has one conversation less: the branch's waiting ones may move
            await self._db_call(DISPATCH_BRANCH_BACKLOG, BranchRef(branch_id=state.branch_id))

    async def _check_inactive(self) -> None:
        state = self.state
        check = await self._db_call(
            RESOLVE_IF_INACTIVE,
            InactivityRequest(conversation_id=state.conversation_id, inactive_days=state.policy.inactive_resolve_days),
            result_type=InactivityCheck,
        )
        floor = workflow.now() + timedelta(minutes=1)
        state.inactivity_check_at = max(check.next_check_at or floor, floor)
        if check.resolved:
            state.status = ConversationStatus.RESOLVED
            state.resolved_at = workflow.now()
            self._upsert_visibility()

    async def _off_hours(self, schedule: WorkingHours, now: datetime) -> None:
        """Nothing is assigned and no escalation runs while the branch is closed."""
        state = self.state
        await self._wait(self._earliest(schedule.next_opening(now), None, now))
        if state.assignee_id is not None and not state.opened and schedule.is_open(workflow.now()):
            state.assigned_at = workflow.now()  # the assignee gets a full window from opening time

    async def _answer_customer(self, *, first: bool) -> None:
        """The offline text once per off-hours period, else the auto-reply on the first message."""
        state = self.state
        now = workflow.now()
        schedule = WorkingHours.model_validate(state.schedule) if state.schedule else None
        if schedule is not None and not schedule.is_open(now):
            period = schedule.off_hours_period_key(now)
            if state.policy.offline_text and period != state.offline_sent_for:
                state.offline_sent_for = period
                await self._system_message("offline", state.policy.offline_text, dedup=f"offline:{period}")
        elif first and state.policy.auto_reply and not state.auto_replied:
            state.auto_replied = True
            await self._system_message("auto_reply", state.policy.auto_reply, dedup="auto_reply")

    async def _system_message(self, purpose: str, text: str, *, dedup: str) -> None:
        state = self.state
        if not state.reachable:
            return
        await self._db_call(
            SEND_SYSTEM_MESSAGE,
            SystemMessageRequest(conversation_id=state.conversation_id, purpose=purpose, text=text, dedup=dedup),
        )

    # -- state helpers ----------------------------------------------------------------------

    async def _db_call(self, activity: str, request: BaseModel, *, result_type: type | None = None) -> Any:
        if workflow.patched(LOCAL_DB_CALLS):
            return await workflow.execute_local_activity(activity, request, result_type=result_type, **DB_CALL)
        return await workflow.execute_activity(activity, request, result_type=result_type, **DB_CALL)

    def _adopt_assignment(self, result: Assignment) -> None:
        """Adopt the database's assignment; a (re)assignment starts a new escalation window."""
        state = self.state
        state.assignee_id = result.assignee_id
        state.branch_id = result.branch_id
        if result.assignee_id is not None:
            state.assigned_at = workflow.now()
            state.opened = False

    def _upsert_visibility(self) -> None:
        """Search attributes and memo, so supervisors can filter in the Temporal UI."""
        state = self.state
        updates = [
            sa.CHANNEL.value_set(state.channel),
            sa.CONVERSATION_STATUS.value_set(state.status.value),
            sa.BRANCH_ID.value_set(state.branch_id) if state.branch_id is not None else sa.BRANCH_ID.value_unset(),
            sa.ASSIGNEE_ID.value_set(state.assignee_id)
            if state.assignee_id is not None
            else sa.ASSIGNEE_ID.value_unset(),
        ]
        visible = (state.channel, state.status, state.branch_id, state.assignee_id, state.contact_name)
        if visible == self._visible:
            return  # each upsert is a history event: only on change
        self._visible = visible
        workflow.upsert_search_attributes(updates)
        workflow.upsert_memo({"contact": state.contact_name})
