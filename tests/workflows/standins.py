"""Stand-ins for the conversation activities (same names), over an in-memory branch.

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
from domain.conversation import Assignment, ConversationState, InactivityCheck, InboxPolicy, SystemMessageRequest
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

        @activity.defn(name="load_conversation")
        async def load(conversation_id: int) -> ConversationState:
            return ConversationState(conversation_id=conversation_id, channel="telegram", contact_name="Ann",
                                     branch_id=3, policy=b.policy, schedule=b.schedule)

        @activity.defn(name="load_branch_schedule")
        async def load_schedule(branch_id: int | None) -> dict | None:
            return b.schedule

        @activity.defn(name="assign_operator")
        async def assign(conversation_id: int, exclude: list[int]) -> Assignment:
            if b.assignee is None:
                b.assignee = choose_operator(b.candidates(), set(exclude))
                if b.assignee is not None:
                    await b.log("assigned", b.assignee)
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name="escalate_conversation")
        async def escalate(conversation_id: int, current: int | None, timed_out: list[int]) -> Assignment:
            if b.opened:
                return Assignment(assignee_id=current, branch_id=3, opened=True)
            b.assignee = next_escalation_target(b.candidates(), set(timed_out), current)
            await b.log("escalated", b.assignee)
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name="alert_supervisors")
        async def alert(conversation_id: int, timed_out: list[int]) -> None:
            await b.log("alert", sorted(timed_out))

        @activity.defn(name="transfer_conversation")
        async def transfer(conversation_id: int, by: int | None, to_op: int | None, to_branch: int | None) -> Assignment:
            b.assignee = to_op
            await b.log("transferred", to_op)
            return Assignment(assignee_id=to_op, branch_id=to_branch or 3)

        @activity.defn(name="resolve_conversation")
        async def resolve(conversation_id: int, by: int | None) -> bool:
            b.status = ConversationStatus.RESOLVED
            await b.log("resolved", by)
            return True

        @activity.defn(name="reopen_conversation")
        async def reopen(conversation_id: int) -> Assignment:
            b.status = ConversationStatus.OPEN
            await b.log("reopened")
            return Assignment(assignee_id=b.assignee, branch_id=3)

        @activity.defn(name="close_conversation")
        async def close(conversation_id: int) -> bool:
            b.status = ConversationStatus.CLOSED
            await b.log("closed")
            return True

        @activity.defn(name="resolve_if_inactive")
        async def inactive(conversation_id: int, days: float) -> InactivityCheck:
            await b.log("inactivity_check")
            return InactivityCheck(resolved=False, next_check_at=None)

        @activity.defn(name="send_system_message")
        async def system_message(request: SystemMessageRequest) -> int:
            await b.log("system_message", request.purpose)
            return len(b.events)

        @activity.defn(name="dispatch_branch_backlog")
        async def dispatch(branch_id: int) -> list[int]:
            await b.log("dispatch", branch_id)
            return []

        return [load, load_schedule, assign, escalate, alert, transfer, resolve, reopen, close, inactive,
                system_message, dispatch]
