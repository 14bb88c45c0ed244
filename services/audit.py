"""The audit trail: the one place an AuditEvent is written (in the caller's transaction) and
read back (the audit log page and its export)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import INT64_MAX
from domain.enums import ActorKind
from domain.wording import N_, invalid
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


# -- reading the trail (Settings -> Audit log, its CSV export) --------------------------------


class AuditQuery(BaseModel):
    """The audit log's filters; `before` is the cursor: entries older than that id."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    actor: int | None = Field(default=None, ge=1, le=INT64_MAX)
    action: str | None = Field(default=None, max_length=100)
    conversation: int | None = Field(default=None, ge=1, le=INT64_MAX)
    since: date | None = None
    until: date | None = None
    before: int | None = Field(default=None, ge=1, le=INT64_MAX)

    @model_validator(mode="after")
    def _in_order(self) -> AuditQuery:
        if self.since and self.until and self.since > self.until:
            raise invalid(N_("The start date is after the end date."))
        return self


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    actor_name: str | None


def _filtered(query: AuditQuery, zone: tzinfo) -> Select:
    statement = select(AuditEvent, Operator.display_name).outerjoin(
        Operator, Operator.id == AuditEvent.actor_operator_id
    )
    if query.actor is not None:
        statement = statement.where(AuditEvent.actor_operator_id == query.actor)
    if query.action:
        statement = statement.where(AuditEvent.action == query.action)
    if query.conversation is not None:
        statement = statement.where(AuditEvent.conversation_id == query.conversation)
    # dates are the reader's local days
    if query.since is not None:
        statement = statement.where(AuditEvent.created_at >= datetime.combine(query.since, time(), zone))
    if query.until is not None:
        statement = statement.where(
            AuditEvent.created_at < datetime.combine(query.until + timedelta(days=1), time(), zone)
        )
    return statement


async def audit_page(
    db: AsyncSession, query: AuditQuery, zone: tzinfo, *, limit: int = 50
) -> tuple[list[AuditRow], int | None]:
    """Newest first, `limit` entries older than the cursor, and the cursor of the next page
    (None on the last). Keyset on the id: a page costs the same at any depth."""
    statement = _filtered(query, zone)
    if query.before is not None:
        statement = statement.where(AuditEvent.id < query.before)
    rows = (await db.execute(statement.order_by(AuditEvent.id.desc()).limit(limit + 1))).all()
    page = [AuditRow(event, name) for event, name in rows[:limit]]
    return page, page[-1].event.id if len(rows) > limit else None


async def audit_rows(
    db: AsyncSession, query: AuditQuery, zone: tzinfo, *, batch: int = 1000
) -> AsyncIterator[AuditRow]:
    """Every entry the filters match, newest first, fetched a batch at a time (the CSV export)."""
    cursor = query.before
    while True:
        rows, cursor = await audit_page(db, query.model_copy(update={"before": cursor}), zone, limit=batch)
        for row in rows:
            yield row
        if cursor is None:
            return


async def known_actions(db: AsyncSession) -> list[str]:
    """The actions the trail holds, for the filter's choices."""
    return list((await db.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))).all())
