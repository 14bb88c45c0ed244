"""The audit trail: the one place an AuditEvent is written, in the caller's transaction."""

from __future__ import annotations

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
