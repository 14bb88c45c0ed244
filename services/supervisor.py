"""The supervisor's board: per branch, who is working (status and load) and what waits (open,
unassigned and unanswered conversations). Supervisors and admins only; the lists behind it
(pool, escalated) are `services.conversation_list` filters, dead letters `services.deadletters`."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OperatorStatus
from infra.models import Branch, Conversation, Operator
from services.errors import Forbidden
from services.inbox import LIVE
from services.operators import is_supervisor


@dataclass(frozen=True, slots=True)
class OperatorLoad:
    id: int
    name: str
    status: OperatorStatus
    load: int  # open and pending conversations assigned to them


@dataclass(slots=True)
class BranchBoard:
    id: int | None  # None: conversations and staff without a branch
    name: str
    open: int = 0
    unassigned: int = 0
    waiting: int = 0  # the customer wrote last and nobody answered
    operators: list[OperatorLoad] = field(default_factory=list)


async def board(db: AsyncSession, viewer: Operator) -> list[BranchBoard]:
    """Every branch (and the branchless, if anything is there), in name order."""
    if not is_supervisor(viewer):
        raise Forbidden()
    live = Conversation.status.in_(LIVE)
    waiting = and_(
        Conversation.last_in_at.is_not(None),
        or_(Conversation.last_out_at.is_(None), Conversation.last_in_at > Conversation.last_out_at),
    )
    named = await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))
    branches: dict[int | None, BranchBoard] = {row.id: BranchBoard(row.id, row.name) for row in named}
    counts = await db.execute(
        select(
            Conversation.branch_id,
            func.count(),
            func.count().filter(Conversation.assignee_id.is_(None)),
            func.count().filter(waiting),
        )
        .where(live)
        .group_by(Conversation.branch_id)
    )
    for branch_id, total, unassigned, unanswered in counts:
        entry = branches.setdefault(branch_id, BranchBoard(None, ""))
        entry.open, entry.unassigned, entry.waiting = total, unassigned, unanswered
    load = (
        select(Conversation.assignee_id, func.count().label("load"))
        .where(live, Conversation.assignee_id.is_not(None))
        .group_by(Conversation.assignee_id)
        .subquery()
    )
    online_first = case(
        (Operator.status == OperatorStatus.ONLINE, 0),
        (Operator.status == OperatorStatus.BUSY, 1),
        (Operator.status == OperatorStatus.AWAY, 2),
        else_=3,
    )
    staff = await db.execute(
        select(Operator.id, Operator.display_name, Operator.status, Operator.branch_id, func.coalesce(load.c.load, 0))
        .outerjoin(load, load.c.assignee_id == Operator.id)
        .where(Operator.is_active)
        .order_by(online_first, Operator.display_name, Operator.id)
    )
    for operator_id, name, status, branch_id, count in staff:
        entry = branches.setdefault(branch_id, BranchBoard(None, ""))
        entry.operators.append(OperatorLoad(operator_id, name, status, count))
    return [entry for key, entry in branches.items() if key is not None] + (
        [branches[None]] if None in branches else []
    )
