"""The audit trail: the one place an AuditEvent is written, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ActorKind
from infra.models import AuditEvent


def record(
    db: AsyncSession,
    action: str,
    *,
    operator_id: int | None = None,
    conversation_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`action` was done by the operator `operator_id`, or by the system when there is none."""
    db.add(
        AuditEvent(
            actor_operator_id=operator_id,
            actor_kind=ActorKind.OPERATOR if operator_id is not None else ActorKind.SYSTEM,
            action=action,
            conversation_id=conversation_id,
            details=details or {},
        )
    )


def record_change(
    db: AsyncSession,
    action: str,
    *,
    operator_id: int | None,
    subject: Mapping[str, Any],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> bool:
    """A settings change with what it was and what it became, only the fields that changed
    (None before: created; None after: deleted). `subject` names the object ({"branch_id": 3}).
    Callers pass JSON-able values and never a secret. Returns False, writing nothing, when
    nothing changed."""
    if before is not None and after is not None:
        changed = [key for key in after if before.get(key) != after.get(key)]
        if not changed:
            return False
        before = {key: before.get(key) for key in changed}
        after = {key: after[key] for key in changed}
    record(db, action, operator_id=operator_id, details={**subject, "before": before, "after": after})
    return True
