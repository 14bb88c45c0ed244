"""Operators as the cabinet sees them: their role and their availability."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Operator
from infra.realtime import publish
from services import audit
from services.assignment import dispatch_backlog


def is_supervisor(operator: Operator) -> bool:
    return operator.role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN)


async def set_status(db: AsyncSession, operator: Operator, status: OperatorStatus) -> list[int]:
    """Change availability; coming online pulls the branch's waiting conversations."""
    previous = operator.status
    await db.execute(
        update(Operator).where(Operator.id == operator.id).values(status=status, status_changed_at=datetime.now(UTC))
    )
    operator.status = status
    audit.record(db, "operator.status", operator_id=operator.id, details={"from": previous.value, "to": status.value})
    await publish(db, "operator.status", operator_id=operator.id, branch_id=operator.branch_id, status=status.value)
    if status == OperatorStatus.ONLINE and operator.branch_id is not None:
        return await dispatch_backlog(db, operator.branch_id)
    return []
