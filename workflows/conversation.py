"""ConversationWorkflow: one per conversation (`conversation-{id}`), long-lived.

Routing, working hours, assignment, the escalation timer, transfer, resolve/close, rating,
auto-reply, and snoozes (their timer; an operator's snooze and reopen are written to the database
first and adopted here). It decides; activities write PostgreSQL (which the cabinet reads) and announce.
Notices arrive only through the outbox relay as the `notify` signal; the handler just queues
them, and the main loop applies them one at a time, so no handler races another.

No activity error ends a conversation's life: an action that fails (a transfer to an operator
deactivated meanwhile, a bug) is reported to whoever asked and to supervisors, and the
conversation stays as it was; a failed timed action is tried again after ACTION_RETRY.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, TimeoutError as ActivityTimeout

# Activities are named, not imported: workflows never import I/O code.
with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.conversation import (
        ACTION_REFUSED,
        ALERT_SUPERVISORS,
        ASSIGN_OPERATOR,
        CLOSE_CONVERSATION,
        CONVERSATION_WORKFLOW,
        DISPATCH_BRANCH_BACKLOG,
        ESCALATE_CONVERSATION,
        LOAD_BRANCH_SCHEDULE,
        LOAD_CONVERSATION,
        LOAD_SETTINGS,
        NOTIFY,
        REOPEN_CONVERSATION,
        REPORT_ACTION_FAILED,
        RESOLVE_CONVERSATION,
        RESOLVE_IF_INACTIVE,
        SEND_SYSTEM_MESSAGE,
        STATE_QUERY,
        TRANSFER_CONVERSATION,
        WAKE_CONVERSATION,
        ActionFailure,
        AlertRequest,
        Assignment,
        AssignRequest,
        BranchRef,
        ConversationInput,
        ConversationNotice,
        ConversationRef,
        ConversationSettings,
        ConversationState,
        EscalateRequest,
        InactivityCheck,
        InactivityRequest,
        NoticeKind,
        ReopenRequest,
        ResolveRequest,
        SystemMessageRequest,
        TransferRequest,
        WakeRequest,
    )
    from domain.enums import ConversationStatus, RatingMode
    from domain.events import TEXT_LIMIT
    from domain.rating import rating_prompt
    from domain.schedule import WorkingHours

# Errors no retry will change: a bug, or data the database refuses. Retrying them for ever would
# hold the conversation (its notices wait behind the action) with nobody told.
NOT_RETRIED = [
    "AssertionError",
    "AttributeError",
    "DataError",
    "IndexError",
    "IntegrityError",
    "KeyError",
    "MultipleResultsFound",
    "NameError",
    "NoResultFound",
    "NotImplementedError",
    "ProgrammingError",
    "TypeError",
    "ValidationError",
]
DB_CALL = {
    "start_to_close_timeout": timedelta(seconds=30),
    # the database may be briefly away; keep trying, the conversation waits
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(minutes=1),
        non_retryable_error_types=NOT_RETRIED,
    ),
}
# Every activity here is one short database transaction, so it runs as a local activity: in the
# worker, recorded as a marker with the workflow task, without the server scheduling and
# dispatching an activity task. That is about a third of the server's work per new conversation,
# and the Temporal server shares our two cores with everything else. Runs recorded before this
# change replay on regular activities.
LOCAL_DB_CALLS = "local-db-calls"
# a pool without online operators re-checks now and then in case a notice was missed
POOL_RECHECK = timedelta(minutes=10)
# An activity error is reported and the conversation goes on; before this patch it failed the
# workflow (a history that ended so replays the same).
ACTION_FAILURES_REPORTED = "action-failures-reported"
# How an activity's failure reaches the workflow: a regular activity's wrapped in ActivityError, a
# local activity's as it was raised (an ApplicationError, or its timeout).
ACTIVITY_FAILED = (ActivityError, ApplicationError, ActivityTimeout)
# Closing a conversation the customer reopened meanwhile reopens it in the workflow as the
# database has it; before, the workflow asked to close it again at once, in a loop, until the
# REOPENED notice arrived.
CLOSE_ADOPTS_REOPEN = "close-adopts-reopen"
ACTION_RETRY = timedelta(minutes=10)  # after a failed timed action
# Snoozes (and an operator's reopen) are new notices: histories recorded before them never reach
# that code; the marker names the runs that did.
SNOOZES = "snoozes"


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
            try:
                self._state = await self._db_call(
                    LOAD_CONVERSATION,
                    ConversationRef(conversation_id=params.conversation_id),
                    result_type=ConversationState,
                )
            except ACTIVITY_FAILED:
                if not workflow.patched(ACTION_FAILURES_REPORTED):
                    raise
                workflow.logger.exception("conversation %s cannot be loaded: nothing to run", params.conversation_id)
                return
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
        paused = state.timed_actions_paused_until
        if paused is not None:
            if now < paused:
                await self._wait(paused)
                return
            state.timed_actions_paused_until = None
        if state.status == ConversationStatus.RESOLVED:
            close_at = (state.resolved_at or now) + timedelta(days=state.policy.resolved_close_days)
            if now >= close_at:
                closed = await self._act(
                    "close",
                    CLOSE_CONVERSATION,
                    ConversationRef(conversation_id=state.conversation_id),
                    result_type=bool,
                    timed=True,
                )
                if closed:
                    state.status = ConversationStatus.CLOSED
                    self._upsert_visibility()
                elif closed is not None and workflow.patched(CLOSE_ADOPTS_REOPEN):
                    # the customer wrote: the database has it open again (its REOPENED notice is
                    # on its way and will find it open)
                    await self._reopen(key=f"reopen:closing:{close_at.isoformat()}")
                    self._upsert_visibility()
                return
            await self._wait(close_at)
            return

        if state.snoozed:
            # set aside: no inactivity check, assignment or escalation until it wakes
            if state.snoozed_until is not None and now >= state.snoozed_until:
                await self._wake_up(state.snoozed_until)
                return
            await self._wait(state.snoozed_until)
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
        kind = notice.kind
        if kind == NoticeKind.SETTINGS_CHANGED:
            # Only "read them again": harmless twice or late, so outside the order the other
            # notices keep (its writer, a trigger, does not lock the conversations it tells).
            await self._load_settings()
            return
        if notice.outbox_id and notice.outbox_id <= state.last_outbox_id:
            return  # the relay re-sent one we already applied
        state.last_outbox_id = max(state.last_outbox_id, notice.outbox_id)
        if kind in (NoticeKind.STARTED, NoticeKind.REOPENED, NoticeKind.OFF_HOURS_MESSAGE):
            if kind == NoticeKind.REOPENED and state.status == ConversationStatus.RESOLVED:
                await self._reopen(key=_key("reopen", notice))
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
        elif kind in (NoticeKind.REOPEN, NoticeKind.SNOOZE, NoticeKind.WAKE) and workflow.patched(SNOOZES):
            self._operator_notice(notice)
        elif kind == NoticeKind.RESOLVE:
            await self._resolve(notice)
        self._upsert_visibility()

    # -- actions ----------------------------------------------------------------------------

    async def _assign(self) -> None:
        state = self.state
        result = await self._act(
            "assign",
            ASSIGN_OPERATOR,
            AssignRequest(conversation_id=state.conversation_id, exclude=state.timed_out),
            result_type=Assignment,
        )
        if result is None:
            return  # it waits in the pool and is tried again at the next re-check
        self._adopt_assignment(result)
        self._upsert_visibility()

    async def _escalate(self) -> None:
        state = self.state
        timed_out = state.timed_out
        if state.assignee_id is not None and state.assignee_id not in timed_out:
            timed_out = [*timed_out, state.assignee_id]
        result = await self._act(
            "escalate",
            ESCALATE_CONVERSATION,
            EscalateRequest(
                conversation_id=state.conversation_id, current_assignee_id=state.assignee_id, timed_out=timed_out
            ),
            result_type=Assignment,
            timed=True,
        )
        if result is None:
            return
        state.timed_out = timed_out
        if result.opened:
            state.opened = True  # opened just before the timer fired; the notice is on its way
            state.timed_out.remove(result.assignee_id)
            return
        self._adopt_assignment(result)
        if result.assignee_id is None:
            state.pool_exhausted = True
            await self._act(
                "alert_supervisors",
                ALERT_SUPERVISORS,
                AlertRequest(
                    conversation_id=state.conversation_id,
                    timed_out=state.timed_out,
                    key=f"alert:{workflow.now().isoformat()}",
                ),
            )
        self._upsert_visibility()

    async def _transfer(self, notice: ConversationNotice) -> None:
        state = self.state
        result = await self._act(
            "transfer",
            TRANSFER_CONVERSATION,
            TransferRequest(
                conversation_id=state.conversation_id,
                by_operator_id=notice.operator_id,
                target_operator_id=notice.target_operator_id,
                target_branch_id=notice.target_branch_id,
                key=_key("transfer", notice),
            ),
            result_type=Assignment,
            operator_id=notice.operator_id,
        )
        if result is None:
            return
        if result.branch_id != state.branch_id:
            state.schedule = await self._act(
                "load_branch_schedule",
                LOAD_BRANCH_SCHEDULE,
                BranchRef(branch_id=result.branch_id),
                failed=state.schedule,  # keep the one it has
            )
        state.timed_out = []
        state.pool_exhausted = False
        self._adopt_assignment(result)

    async def _reopen(self, *, key: str | None) -> None:
        state = self.state
        result = await self._act(
            "reopen",
            REOPEN_CONVERSATION,
            ReopenRequest(conversation_id=state.conversation_id, key=key),
            result_type=Assignment,
        )
        if result is None:
            return
        state.status = ConversationStatus.OPEN
        state.resolved_at = None
        self._adopt_assignment(result)

    def _operator_notice(self, notice: ConversationNotice) -> None:
        """Adopt what an operator already wrote to the database: a reopen, a snooze, its end."""
        state = self.state
        if notice.kind == NoticeKind.REOPEN:
            if state.status in (ConversationStatus.RESOLVED, ConversationStatus.OPEN, ConversationStatus.PENDING):
                state.status = ConversationStatus.OPEN
                state.resolved_at = None
                state.timed_out = []
                state.pool_exhausted = False
                state.snoozed, state.snoozed_until = False, None
                state.assigned_at = workflow.now()
                # the operator who reopened it has it open (no escalation); a token's reopen
                # gives its assignee a new window, or the pool a new assignment
                state.opened = notice.operator_id is not None
                if notice.operator_id is not None:
                    state.assignee_id = notice.operator_id
        elif notice.kind == NoticeKind.SNOOZE:
            if state.status in (ConversationStatus.OPEN, ConversationStatus.PENDING):
                state.snoozed, state.snoozed_until = True, notice.until
        elif state.snoozed:
            self._woken()

    async def _wake_up(self, until: datetime) -> None:
        """The snooze's time came: the database wakes it (unless a newer snooze replaced it)."""
        state = self.state
        woke = await self._act(
            "wake",
            WAKE_CONVERSATION,
            WakeRequest(conversation_id=state.conversation_id, until=until),
            result_type=bool,
            timed=True,
        )
        if woke is not None:
            self._woken()

    def _woken(self) -> None:
        state = self.state
        state.snoozed, state.snoozed_until = False, None
        if state.assignee_id is not None and not state.opened:
            state.assigned_at = workflow.now()  # a full escalation window from waking

    async def _load_settings(self) -> None:
        state = self.state
        settings = await self._act(
            "load_settings",
            LOAD_SETTINGS,
            ConversationRef(conversation_id=state.conversation_id),
            result_type=ConversationSettings,
        )
        if settings is not None:
            state.policy = settings.policy
            state.schedule = settings.schedule

    async def _resolve(self, notice: ConversationNotice) -> None:
        state = self.state
        if state.status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
            return
        resolved = await self._act(
            "resolve",
            RESOLVE_CONVERSATION,
            ResolveRequest(conversation_id=state.conversation_id, by_operator_id=notice.operator_id),
            result_type=bool,
            operator_id=notice.operator_id,
        )
        if not resolved:
            return
        state.status = ConversationStatus.RESOLVED
        state.resolved_at = workflow.now()
        state.snoozed, state.snoozed_until = False, None
        if state.policy.rating_mode != RatingMode.NONE:
            text = state.policy.rating_text or rating_prompt(state.policy.rating_mode)
            await self._system_message("rating_request", text, dedup=f"rating:{state.resolved_at.isoformat()}")
        if state.branch_id is not None:
            # the operator has one conversation less: the branch's waiting ones may move
            await self._act("dispatch_branch_backlog", DISPATCH_BRANCH_BACKLOG, BranchRef(branch_id=state.branch_id))

    async def _check_inactive(self) -> None:
        state = self.state
        check = await self._act(
            "resolve_if_inactive",
            RESOLVE_IF_INACTIVE,
            InactivityRequest(conversation_id=state.conversation_id, inactive_days=state.policy.inactive_resolve_days),
            result_type=InactivityCheck,
            timed=True,
        )
        if check is None:
            return
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
        await self._act(
            "send_system_message",
            SEND_SYSTEM_MESSAGE,
            SystemMessageRequest(conversation_id=state.conversation_id, purpose=purpose, text=text, dedup=dedup),
        )

    # -- state helpers ----------------------------------------------------------------------

    async def _db_call(self, activity: str, request: BaseModel, *, result_type: type | None = None) -> Any:
        if workflow.patched(LOCAL_DB_CALLS):
            return await workflow.execute_local_activity(activity, request, result_type=result_type, **DB_CALL)
        return await workflow.execute_activity(activity, request, result_type=result_type, **DB_CALL)

    async def _act(
        self,
        action: str,
        activity: str,
        request: BaseModel,
        *,
        result_type: type | None = None,
        operator_id: int | None = None,
        timed: bool = False,
        failed: Any = None,
    ) -> Any:
        """One action's result, or `failed` when its activity failed: then it is reported (to
        `operator_id`, who asked, and supervisors), and a `timed` one pauses the timed actions
        for ACTION_RETRY so a failing one does not run in a loop."""
        try:
            return await self._db_call(activity, request, result_type=result_type)
        except ACTIVITY_FAILED as error:
            if not workflow.patched(ACTION_FAILURES_REPORTED):
                raise
            cause = error.cause if isinstance(error, ActivityError) else error
            refused = isinstance(cause, ApplicationError) and cause.type == ACTION_REFUSED
            if refused:
                reason = cause.message
            elif isinstance(cause, ApplicationError):
                reason = f"{cause.type}: {cause.message}"
            else:
                reason = str(cause or error)
            if not refused:
                workflow.logger.error("%s failed in conversation %s: %s", action, self.state.conversation_id, reason)
            if timed:
                self.state.timed_actions_paused_until = workflow.now() + ACTION_RETRY
            await self._report(
                ActionFailure(
                    conversation_id=self.state.conversation_id,
                    action=action,
                    operator_id=operator_id,
                    reason=reason[:TEXT_LIMIT],
                    refused=refused,
                )
            )
            return failed

    async def _report(self, failure: ActionFailure) -> None:
        try:
            await self._db_call(REPORT_ACTION_FAILED, failure)
        except ACTIVITY_FAILED:
            workflow.logger.exception("could not report a failed %s", failure.action)

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


def _key(action: str, notice: ConversationNotice) -> str | None:
    """What makes the action idempotent: the notice that caused it (tests send notices without
    an outbox row)."""
    return f"{action}:{notice.outbox_id}" if notice.outbox_id else None
