"""Assignment in the database: the one place that writes `conversations.assignee_id`.

Race safety: every assignment in a branch runs under a transaction-scoped advisory lock of
that branch, so concurrent workflows never read the same stale loads and pile onto one
operator; the choice itself is the pure rule in domain.assignment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.assignment import OperatorCandidate, choose_operator
from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, OperatorStatus
from domain.events import AssignmentReason, ConversationAssigned, ConversationEscalated
from domain.schedule import WorkingHours
from infra.event_log import conversation_ids, publish
from infra.models import Branch, Conversation, Operator
from services import audit
from services.outbox import add_notice

LIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING)
ESCALATED = "conversation.escalated"
# audit action -> why the realtime event says it was assigned
_REASONS = {
    "conversation.assigned": AssignmentReason.ASSIGNED,
    "conversation.assigned_from_pool": AssignmentReason.FROM_POOL,
    "conversation.transferred": AssignmentReason.TRANSFERRED,
    "conversation.taken": AssignmentReason.TAKEN,
    "conversation.returned": AssignmentReason.RETURNED,
}
_BRANCH_LOCK_SPACE = 0x0B4A


async def lock_branch(db: AsyncSession, branch_id: int) -> None:
    await db.execute(select(func.pg_advisory_xact_lock(_BRANCH_LOCK_SPACE, branch_id)))


async def online_candidates(db: AsyncSession, branch_id: int) -> list[OperatorCandidate]:
    load = func.count(Conversation.id)
    rows = await db.execute(
        select(Operator.id, Operator.last_assigned_at, load)
        .outerjoin(Conversation, and_(Conversation.assignee_id == Operator.id, Conversation.status.in_(LIVE)))
        .where(Operator.branch_id == branch_id, Operator.status == OperatorStatus.ONLINE, Operator.is_active)
        .group_by(Operator.id)
    )
    return [OperatorCandidate(operator_id=r[0], last_assigned_at=r[1], open_load=r[2]) for r in rows]


async def set_assignee(
    db: AsyncSession,
    conversation: Conversation,
    operator_id: int | None,
    *,
    action: str,
    actor_operator_id: int | None = None,
    branch_id: int | None = None,
) -> None:
    """Write the assignment, the round-robin stamp, the audit entry and the realtime event."""
    now = datetime.now(UTC)
    previous, previous_branch = conversation.assignee_id, conversation.branch_id
    conversation.assignee_id = operator_id
    if branch_id is not None:
        conversation.branch_id = branch_id
    conversation.assigned_at = now if operator_id is not None else None
    conversation.opened_at = None
    if operator_id is not None:
        await db.execute(update(Operator).where(Operator.id == operator_id).values(last_assigned_at=now))
    audit.record(
        db,
        action,
        operator_id=actor_operator_id,
        conversation_id=conversation.id,
        details={"from": previous, "to": operator_id, "branch_id": conversation.branch_id},
    )
    moved = {"previous_branch_id": previous_branch, "previous_assignee_id": previous}
    if action == ESCALATED:
        event = ConversationEscalated.of(conversation_ids(conversation), **moved)
    else:
        reason = _REASONS[action]
        event = ConversationAssigned.of(
            conversation_ids(conversation), **moved, reason=reason, actor_operator_id=actor_operator_id
        )
    await publish(db, event)


# Branch schedules are read on every inbound message; they change rarely, so a process keeps
# all of them (a handful of rows) for a short while: an edit takes effect within
# SCHEDULE_CACHE_SECONDS, a new branch at once (a miss reloads).
SCHEDULE_CACHE_SECONDS = 30.0
ScheduleRows = Callable[[], Awaitable[Iterable[tuple[int, dict | str | None]]]]
_schedules: tuple[float, dict[int, WorkingHours | None]] = (float("-inf"), {})


async def branch_schedules(load: ScheduleRows, *, reload: bool = False) -> dict[int, WorkingHours | None]:
    """Every branch's schedule (None: open around the clock). `load` returns (id, working_hours)
    rows, working_hours as a dict or, from a raw driver connection, JSON text."""
    global _schedules
    if reload or time.monotonic() - _schedules[0] > SCHEDULE_CACHE_SECONDS:
        loaded = {}
        for branch_id, hours in await load():
            hours = json.loads(hours) if isinstance(hours, str) else hours
            loaded[branch_id] = WorkingHours.model_validate(hours) if hours else None
        _schedules = (time.monotonic(), loaded)
    return _schedules[1]


def forget_branch_schedules() -> None:
    """This process reads every schedule afresh next time (after an admin changed one here)."""
    global _schedules
    _schedules = (float("-inf"), {})


def is_open(schedule: WorkingHours | None, at: datetime) -> bool:
    return schedule is None or schedule.is_open(at)


async def branch_is_open(db: AsyncSession, branch_id: int, at: datetime) -> bool:
    async def load() -> Iterable[tuple[int, dict | None]]:
        return [(r.id, r.working_hours) for r in await db.execute(select(Branch.id, Branch.working_hours))]

    schedules = await branch_schedules(load)
    if branch_id not in schedules:
        schedules = await branch_schedules(load, reload=True)
    return is_open(schedules.get(branch_id), at)


async def dispatch_backlog(db: AsyncSession, branch_id: int) -> list[int]:
    """Assign the branch's waiting conversations, oldest first, while operators are online.

    Called when an operator comes online or finishes a conversation. Each assignment is told
    to its workflow (ASSIGNED notice) so the escalation timer starts there.
    """
    await lock_branch(db, branch_id)
    if not await branch_is_open(db, branch_id, datetime.now(UTC)):
        return []
    candidates = {c.operator_id: c for c in await online_candidates(db, branch_id)}
    if not candidates:
        return []
    waiting = (
        await db.scalars(
            select(Conversation)
            .where(
                Conversation.branch_id == branch_id,
                Conversation.assignee_id.is_(None),
                Conversation.status.in_(LIVE),
            )
            .order_by(Conversation.created_at, Conversation.id)
            .with_for_update()
        )
    ).all()
    assigned = []
    for conversation in waiting:
        operator_id = choose_operator(candidates.values())
        assert operator_id is not None
        await set_assignee(db, conversation, operator_id, action="conversation.assigned_from_pool")
        await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.ASSIGNED, operator_id=operator_id))
        chosen = candidates[operator_id]
        candidates[operator_id] = chosen.model_copy(
            update={"open_load": chosen.open_load + 1, "last_assigned_at": datetime.now(UTC)}
        )
        assigned.append(conversation.id)
    return assigned
