"""Presence: an operator with no cabinet tab open for the cabinet's `offline_after_minutes` is
taken offline, through the one status switch (services/operators.py), so routing, the board
and the audit see it as they see a manual change.

A tab is an open `/events` stream: each api process stamps `operators.last_seen_at` for the
operators it streams to (web/presence.py), and a periodic sweep (workflows/presence.py) takes
offline whoever is not offline and was last seen, and last changed their status, longer ago
than the setting. Nobody comes back online by themselves: they switch their status, as always.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OperatorStatus
from infra.models import CabinetSettings, Operator
from services import audit
from services.operators import require_admin, set_status

OFFLINE_AFTER_DEFAULT = 5
# the audit's reason (a stable value, not a sentence: the log shows it as recorded)
NO_OPEN_TAB = "no open tab"


class PresenceInput(BaseModel):
    """After how many minutes with no cabinet tab open an operator goes offline (0: never)."""

    model_config = ConfigDict(extra="forbid")

    offline_after_minutes: int = Field(ge=0, le=1440)


async def offline_after_minutes(db: AsyncSession) -> int:
    found = await db.scalar(select(CabinetSettings.offline_after_minutes).where(CabinetSettings.id == 1))
    return OFFLINE_AFTER_DEFAULT if found is None else found


async def set_offline_after(db: AsyncSession, actor: Operator, data: PresenceInput) -> None:
    require_admin(actor)
    before = await offline_after_minutes(db)
    minutes = data.offline_after_minutes
    await db.execute(
        insert(CabinetSettings)
        .values(id=1, offline_after_minutes=minutes)
        .on_conflict_do_update(index_elements=[CabinetSettings.id], set_={"offline_after_minutes": minutes})
    )
    audit.record_change(
        db,
        "settings.presence",
        operator_id=actor.id,
        subject={},
        before={"offline_after_minutes": before},
        after={"offline_after_minutes": minutes},
    )


async def mark_seen(db: AsyncSession, operator_ids: Sequence[int]) -> None:
    """These operators have a tab open now (or had until a moment ago)."""
    # one array parameter, however many operators a process streams to
    ids = bindparam("ids", sorted(operator_ids), type_=ARRAY(BigInteger))
    await db.execute(
        update(Operator).where(Operator.id == any_(ids)).values(last_seen_at=func.now()),
        execution_options={"synchronize_session": False},
    )


async def take_absent_offline(db: AsyncSession) -> list[int]:
    """Offline whoever has had no tab open for the setting's minutes; their ids. Rows another
    transaction holds (a status switch right now) are left to the next sweep."""
    minutes = await offline_after_minutes(db)
    if minutes == 0:
        return []
    since = func.now() - text("make_interval(mins => :minutes)").bindparams(minutes=minutes)
    absent = (
        await db.scalars(
            select(Operator)
            .where(
                Operator.is_active,
                Operator.status != OperatorStatus.OFFLINE,
                # a status switched on without a tab (or just before the stamps began) has its grace too
                func.greatest(Operator.last_seen_at, Operator.status_changed_at) < since,
            )
            .order_by(Operator.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    for operator in absent:
        await set_status(db, operator, OperatorStatus.OFFLINE, reason=NO_OPEN_TAB)
    return [operator.id for operator in absent]
