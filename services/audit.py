"""The audit trail: the one place an AuditEvent is written, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ActorKind
from infra.models import ApiToken, AuditEvent, Operator


def record(
    db: AsyncSession,
    action: str,
    *,
    operator_id: int | None = None,
    token_id: int | None = None,
    conversation_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """`action` was done by the operator `operator_id`, or through the API token `token_id`, or
    by the system when there is neither."""
    if operator_id is not None:
        kind = ActorKind.OPERATOR
    else:
        kind = ActorKind.SYSTEM if token_id is None else ActorKind.INTEGRATION
    db.add(
        AuditEvent(
            actor_operator_id=operator_id,
            actor_token_id=token_id,
            actor_kind=kind,
            action=action,
            conversation_id=conversation_id,
            details=details or {},
        )
    )


def by(caller: Operator | ApiToken) -> dict[str, int]:
    """`record`'s actor arguments for whoever called a service: `record(db, ..., **by(caller))`."""
    return {"token_id": caller.id} if isinstance(caller, ApiToken) else {"operator_id": caller.id}
