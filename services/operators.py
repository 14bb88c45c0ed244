"""Operators as the cabinet sees them: their role, their availability, and what each sets about
themselves (profile, language, theme, notifications, password, sessions)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Locale, NotifyMode, OperatorRole, OperatorStatus, Theme
from domain.events import OperatorStatusChanged
from domain.visibility import Integration, Viewer
from domain.wording import N_, invalid
from infra.event_log import publish
from infra.models import Operator, WebSession
from infra.security import hash_password, verify_password
from services import audit
from services.assignment import dispatch_backlog
from services.errors import Forbidden, Invalid

PASSWORD_MIN, PASSWORD_MAX = 8, 200


def is_supervisor(operator: Operator) -> bool:
    return operator.role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN)


def require_admin(operator: Operator) -> None:
    """Settings are the admins' (the pages check first and answer 403; this guards every caller)."""
    if operator.role != OperatorRole.ADMIN:
        raise Forbidden()


async def set_status(
    db: AsyncSession, operator: Operator, status: OperatorStatus, *, reason: str | None = None
) -> list[int]:
    """Change availability; coming online pulls the branch's waiting conversations. With a
    `reason` the system changes it (audited as the system's, with the reason), not the operator."""
    previous = operator.status
    await db.execute(
        update(Operator).where(Operator.id == operator.id).values(status=status, status_changed_at=datetime.now(UTC))
    )
    operator.status = status
    details = {"from": previous.value, "to": status.value}
    if reason is None:
        audit.record(db, "operator.status", operator_id=operator.id, details=details)
    else:
        audit.record(db, "operator.status", details={**details, "operator_id": operator.id, "reason": reason})
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


class ProfileInput(BaseModel):
    """What an operator sets about themselves; an empty timezone follows their branch's."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    display_name: str = Field(min_length=1, max_length=200)
    locale: Locale = Locale.RU
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value and value not in zoneinfo.available_timezones():
            raise invalid(N_("Unknown timezone %(name)s: choose one from the list, such as Europe/Moscow."), name=value)
        return value or None


class NotificationsInput(BaseModel):
    """Which events sound and notify (domain.enums.NotifyMode), and whether also in a focused tab."""

    model_config = ConfigDict(extra="forbid")

    notify_mode: NotifyMode = NotifyMode.MINE
    notify_sound: bool = True
    notify_when_focused: bool = False


class PasswordInput(BaseModel):
    """A new password, typed twice."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
    repeat: str = Field(max_length=PASSWORD_MAX)

    @field_validator("repeat")
    @classmethod
    def _same(cls, value: str, info: ValidationInfo) -> str:
        if "password" in info.data and value != info.data["password"]:
            raise invalid(N_("The two passwords differ."))
        return value


class PasswordChange(PasswordInput):
    current: str = Field(max_length=1000)


def _fields(operator: Operator, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(operator, name) for name in names}


async def update_profile(db: AsyncSession, operator: Operator, data: ProfileInput) -> None:
    names = ("display_name", "locale", "timezone")
    before = _fields(operator, names)
    await db.execute(
        update(Operator)
        .where(Operator.id == operator.id)
        .values(display_name=data.display_name, locale=data.locale.value, timezone=data.timezone)
    )
    operator.display_name, operator.locale, operator.timezone = data.display_name, data.locale.value, data.timezone
    audit.record_change(
        db, "operator.profile", operator_id=operator.id, subject={}, before=before, after=_fields(operator, names)
    )


async def set_notifications(db: AsyncSession, operator: Operator, data: NotificationsInput) -> None:
    names = ("notify_mode", "notify_sound", "notify_when_focused")
    before = _fields(operator, names)
    values = {"notify_mode": data.notify_mode.value, "notify_sound": data.notify_sound}
    values["notify_when_focused"] = data.notify_when_focused
    await db.execute(update(Operator).where(Operator.id == operator.id).values(**values))
    for name, value in values.items():
        setattr(operator, name, value)
    audit.record_change(
        db, "operator.notifications", operator_id=operator.id, subject={}, before=before, after=_fields(operator, names)
    )


async def change_password(db: AsyncSession, operator: Operator, data: PasswordChange, *, session_id: int) -> int:
    """A new password after the current one; every other session of theirs ends (returns how many)."""
    if not verify_password(operator.password_hash, data.current):
        raise Invalid(N_("This is not your current password."), field="current")
    operator.password_hash = hash_password(data.password)
    await db.execute(update(Operator).where(Operator.id == operator.id).values(password_hash=operator.password_hash))
    ended = await end_other_sessions(db, operator, session_id=session_id, audited=False)
    audit.record(db, "operator.password_changed", operator_id=operator.id, details={"sessions_ended": ended})
    return ended


async def sessions_of(db: AsyncSession, operator: Operator) -> list[WebSession]:
    """The operator's sessions that have not expired, newest first."""
    return list(
        (
            await db.scalars(
                select(WebSession)
                .where(WebSession.operator_id == operator.id, WebSession.expires_at > datetime.now(UTC))
                .order_by(WebSession.created_at.desc())
            )
        ).all()
    )


async def end_other_sessions(db: AsyncSession, operator: Operator, *, session_id: int, audited: bool = True) -> int:
    """Sign out everywhere but this session."""
    ended = (
        await db.execute(delete(WebSession).where(WebSession.operator_id == operator.id, WebSession.id != session_id))
    ).rowcount or 0
    if audited:
        audit.record(db, "operator.signed_out_elsewhere", operator_id=operator.id, details={"sessions_ended": ended})
    return ended


async def list_operators(db: AsyncSession, viewer: Viewer) -> list[Operator]:
    """The active operators with their status: all of them, or for a token of some branches the
    operators of those branches."""
    query = select(Operator).where(Operator.is_active).order_by(Operator.id)
    if isinstance(viewer, Integration) and viewer.branch_ids is not None:
        query = query.where(Operator.branch_id.in_(viewer.branch_ids))
    return list((await db.scalars(query)).all())
