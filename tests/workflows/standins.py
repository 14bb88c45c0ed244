"""Stand-ins for the conversation activities (the same names and inputs), over an in-memory branch.

They stamp what they do with the server's (time-skipped) clock, so tests can assert *when*;
the harness sets `clock`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity

from domain.assignment import OperatorCandidate, choose_operator, next_escalation_target
from domain.conversation import (
    ALERT_SUPERVISORS,
    ASSIGN_OPERATOR,
    CLOSE_CONVERSATION,
    DISPATCH_BRANCH_BACKLOG,
    ESCALATE_CONVERSATION,
    LOAD_BRANCH_SCHEDULE,
    LOAD_CONVERSATION,
    LOAD_SETTINGS,
    REOPEN_CONVERSATION,
    REPORT_ACTION_FAILED,
    RESOLVE_CONVERSATION,
    RESOLVE_IF_INACTIVE,
    SEND_SYSTEM_MESSAGE,
    TRANSFER_CONVERSATION,
    WAKE_CONVERSATION,
    ActionFailure,
    AlertRequest,
    Assignment,
    AssignRequest,
    BranchRef,
    ConversationRef,
    ConversationSettings,
    ConversationState,
    EscalateRequest,
    InactivityCheck,
    InactivityRequest,
    InboxPolicy,
    ReopenRequest,
    ResolveRequest,
    SystemMessageRequest,
    TransferRequest,
    WakeRequest,
)
from domain.enums import ConversationStatus


@dataclass
class Branch:
    online: list[int]
    conversation_id: int = 1
    assignee: int | None = None
    opened: bool = False
    status: ConversationStatus = ConversationStatus.OPEN
    policy: InboxPolicy = field(default_factory=InboxPolicy)
    schedule: dict[str, Any] | None = None
    loads: dict[int, int] = field(default_factory=dict)
    events: list[tuple[str, Any, datetime]] = field(default_factory=list)
    clock: Callable[[], Awaitable[datetime]] | None = None
    # activity name -> what it raises (a refusal, a bug)
    failing: dict[str, Exception] = field(default_factory=dict)

    def fail_if_told(self, name: str) -> None:
        if name in self.failing:
            raise self.failing[name]

    async def log(self, kind: str, value: Any = None) -> None:
        # the activities run as local activities, whose info carries the worker's wall clock:
        # ask the (time-skipping) server for its time instead
        at = await self.clock() if self.clock else activity.info().current_attempt_scheduled_time
        self.events.append((kind, value, at))

    def kinds(self, kind: str) -> list[tuple[Any, datetime]]:
        return [(v, t) for k, v, t in self.events if k == kind]

    def candidates(self) -> list[OperatorCandidate]:
        return [OperatorCandidate(operator_id=o, open_load=self.loads.get(o, 0)) for o in self.online]

    def activities(self) -> list:
        b = self

        @activity.defn(name=LOAD_CONVERSATION)
        async def load(request: ConversationRef) -> ConversationState:
            return ConversationState(
                conversation_id=request.conversation_id,
                channel="telegram",
                contact_name="Ann",
                branch_id=3,
                policy=b.policy,
                schedule=b.schedule,
            )

        @activity.defn(name=LOAD_BRANCH_SCHEDULE)
        async def load_schedule(request: BranchRef) -> dict | None:
            return b.schedule

        @activity.defn(name=ASSIGN_OPERATOR)
        async def assign(request: AssignRequest) -> Assignment:
            if b.assignee is None:
                b.assignee = choose_operator(b.candidates(), set(request.exclude))
                if b.assignee is not None:
                    await b.log("assigned", b.assignee)
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name=ESCALATE_CONVERSATION)
        async def escalate(request: EscalateRequest) -> Assignment:
            b.fail_if_told(ESCALATE_CONVERSATION)
            if b.opened:
                return Assignment(assignee_id=request.current_assignee_id, branch_id=3, opened=True)
            b.assignee = next_escalation_target(b.candidates(), set(request.timed_out), request.current_assignee_id)
            await b.log("escalated", b.assignee)
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name=ALERT_SUPERVISORS)
        async def alert(request: AlertRequest) -> None:
            await b.log("alert", sorted(request.timed_out))

        @activity.defn(name=TRANSFER_CONVERSATION)
        async def transfer(request: TransferRequest) -> Assignment:
            b.fail_if_told(TRANSFER_CONVERSATION)
            b.assignee = request.target_operator_id
            await b.log("transferred", request.target_operator_id)
            return Assignment(assignee_id=request.target_operator_id, branch_id=request.target_branch_id or 3)

        @activity.defn(name=RESOLVE_CONVERSATION)
        async def resolve(request: ResolveRequest) -> bool:
            b.status = ConversationStatus.RESOLVED
            await b.log("resolved", request.by_operator_id)
            return True

        @activity.defn(name=REOPEN_CONVERSATION)
        async def reopen(request: ReopenRequest) -> Assignment:
            b.status = ConversationStatus.OPEN
            await b.log("reopened", request.key)
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name=CLOSE_CONVERSATION)
        async def close(request: ConversationRef) -> bool:
            await b.log("close_called")
            if b.status not in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
                return False  # the customer wrote: it is open again
            b.status = ConversationStatus.CLOSED
            await b.log("closed")
            return True

        @activity.defn(name=RESOLVE_IF_INACTIVE)
        async def inactive(request: InactivityRequest) -> InactivityCheck:
            await b.log("inactivity_check")
            return InactivityCheck(resolved=False, next_check_at=None)

        @activity.defn(name=SEND_SYSTEM_MESSAGE)
        async def system_message(request: SystemMessageRequest) -> int:
            await b.log("system_message", request.purpose)
            return len(b.events)

        @activity.defn(name=DISPATCH_BRANCH_BACKLOG)
        async def dispatch(request: BranchRef) -> list[int]:
            await b.log("dispatch", request.branch_id)
            return []

        @activity.defn(name=LOAD_SETTINGS)
        async def load_settings(request: ConversationRef) -> ConversationSettings:
            await b.log("settings_loaded")
            return ConversationSettings(policy=b.policy, schedule=b.schedule)

        @activity.defn(name=REPORT_ACTION_FAILED)
        async def report(request: ActionFailure) -> None:
            await b.log("action_failed", (request.action, request.operator_id, request.refused, request.reason))

        @activity.defn(name=WAKE_CONVERSATION)
        async def wake(request: WakeRequest) -> bool:
            await b.log("woken", request.until)
            return True

        return [
            wake,
            load,
            load_schedule,
            assign,
            escalate,
            alert,
            transfer,
            resolve,
            reopen,
            close,
            inactive,
            system_message,
            dispatch,
            load_settings,
            report,
        ]
