"""Operators as the cabinet sees them: their role and their availability."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Locale, OperatorRole, OperatorStatus, Theme
from domain.events import OperatorStatusChanged
from domain.visibility import Integration, Viewer
from infra.event_log import publish
from infra.models import Operator
from services import audit
from services.assignment import dispatch_backlog
from services.errors import Forbidden, Invalid


def is_supervisor(operator: Operator) -> bool:
    return operator.role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN)


def require_admin(operator: Operator) -> None:
    """Settings are the admins' (the pages check first and answer 403; this guards every caller)."""
    if operator.role != OperatorRole.ADMIN:
        raise Forbidden()


async def set_status(db: AsyncSession, operator: Operator, status: OperatorStatus) -> list[int]:
    """Change availability; coming online pulls the branch's waiting conversations."""
    previous = operator.status
    await db.execute(
        update(Operator).where(Operator.id == operator.id).values(status=status, status_changed_at=datetime.now(UTC))
    )
    operator.status = status
    audit.record(db, "operator.status", operator_id=operator.id, details={"from": previous.value, "to": status.value})
    await publish(
        db,
        OperatorStatusChanged(
            operator_id=operator.id, branch_id=operator.branch_id, status=status, previous_status=previous
        ),
    )
    if status == OperatorStatus.ONLINE and operator.branch_id is not None:
        return await dispatch_backlog(db, operator.branch_id)
    return []


async def set_preferences(
    db: AsyncSession, operator: Operator, *, locale: str | None = None, theme: str | None = None
) -> None:
    """Change the cabinet's language or theme for this operator (values of Locale and Theme)."""
    changes: dict[str, str] = {}
    try:
        if locale is not None:
            changes["locale"] = Locale(locale).value
        if theme is not None:
            changes["theme"] = Theme(theme).value
    except ValueError as exc:
        raise Invalid(f"Unknown choice: {exc}") from exc
    if not changes:
        return
    await db.execute(update(Operator).where(Operator.id == operator.id).values(**changes))
    for name, value in changes.items():
        setattr(operator, name, value)
    audit.record(db, "operator.preferences", operator_id=operator.id, details=changes)


async def list_operators(db: AsyncSession, viewer: Viewer) -> list[Operator]:
    """The active operators with their status: all of them, or for a token of some branches the
    operators of those branches."""
    query = select(Operator).where(Operator.is_active).order_by(Operator.id)
    if isinstance(viewer, Integration) and viewer.branch_ids is not None:
        query = query.where(Operator.branch_id.in_(viewer.branch_ids))
    return list((await db.scalars(query)).all())
