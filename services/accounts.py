"""Operator accounts as admins run them: invitations by a one-time link (or an initial password
shown once), role, branch and languages, password resets, deactivation; and the links an
operator opens to set their password.

Deactivating ends the operator's sessions at once and returns their open conversations to their
branch's pool; each conversation's workflow is told through the outbox (a transfer to "first
free in the branch", so it reassigns the conversation and restarts its escalation window).

Links and passwords are random, shown once and stored only as digests; nothing here logs or
audits them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import RowId
from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import OperatorRole, OperatorStatus
from domain.events import OperatorStatusChanged
from domain.wording import N_, invalid
from infra.event_log import publish
from infra.models import Branch, Conversation, Operator, PasswordLink, WebSession
from infra.security import hash_password, new_token, token_digest
from services import audit
from services.assignment import LIVE, set_assignee
from services.errors import Forbidden, Invalid, unique_or_invalid
from services.operators import PasswordInput, require_admin
from services.outbox import add_notice

INVITE_VALID = timedelta(days=3)
RESET_VALID = timedelta(days=1)
INVITE, RESET = "invite", "reset"
# the languages an operator may say they answer in (ISO 639-1); the cabinet names them
SPOKEN_LANGUAGES = (
    "ru",
    "en",
    "uk",
    "be",
    "kk",
    "uz",
    "ky",
    "tg",
    "hy",
    "az",
    "ka",
    "tr",
    "de",
    "fr",
    "es",
    "zh",
    "ar",
)
# an invited operator who has not set a password yet: no password can match this hash
PENDING = "!invited"
# anything@host: the link or the first sign-in proves the address (the seeded admin is admin@localhost)
_EMAIL = re.compile(r"[^@\s]+@[^@\s.][^@\s]*")


class AccountInput(BaseModel):
    """An operator account as a form or the API sends it."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    display_name: str = Field(min_length=1, max_length=200)
    role: OperatorRole = OperatorRole.OPERATOR
    branch_id: RowId | None = None
    languages: list[str] = Field(default_factory=list, max_length=len(SPOKEN_LANGUAGES))

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise invalid(N_("Enter an e-mail address such as anna@example.com."))
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        if any(code not in SPOKEN_LANGUAGES for code in value):
            raise invalid(N_("Choose one of the options."))
        return sorted(set(value), key=SPOKEN_LANGUAGES.index)


class InviteInput(AccountInput):
    # a one-time link the operator opens to set their password, or a password shown once now
    delivery: Literal["link", "password"] = "link"


@dataclass(frozen=True)
class Issued:
    """What the admin hands over, once: a link token (the page builds the address) or a password."""

    operator: Operator
    link_token: str | None = None
    password: str | None = None
    expires_at: datetime | None = None


def is_pending(operator: Operator) -> bool:
    return operator.password_hash == PENDING


def _snapshot(operator: Operator) -> dict[str, object]:
    return {
        "email": operator.email,
        "display_name": operator.display_name,
        "role": operator.role.value,
        "branch_id": operator.branch_id,
        "languages": list(operator.languages or []),
    }


async def list_accounts(db: AsyncSession) -> list[Operator]:
    return list(
        (
            await db.scalars(select(Operator).order_by(Operator.is_active.desc(), func.lower(Operator.display_name)))
        ).all()
    )


async def get_account(db: AsyncSession, operator_id: int, *, lock: bool = False) -> Operator:
    operator = await db.get(Operator, operator_id, with_for_update=lock)
    if operator is None:
        raise Forbidden()
    return operator


async def _check_branch(db: AsyncSession, branch_id: int | None) -> None:
    if branch_id is not None and await db.get(Branch, branch_id) is None:
        raise Invalid(N_("That branch does not exist."), field="branch_id")


def _unique_email(db: AsyncSession):
    return unique_or_invalid(db, N_("Someone has this e-mail already."), field="email")


async def _issue(db: AsyncSession, actor: Operator, operator: Operator, purpose: str, delivery: str) -> Issued:
    # earlier links of the same operator stop working: only the newest one is handed out
    now = datetime.now(UTC)
    await db.execute(
        update(PasswordLink)
        .where(PasswordLink.operator_id == operator.id, PasswordLink.used_at.is_(None))
        .values(used_at=now)
    )
    if delivery == "password":
        password = secrets.token_urlsafe(12)
        operator.password_hash = hash_password(password)
        return Issued(operator, password=password)
    token = new_token()
    expires_at = now + (INVITE_VALID if purpose == INVITE else RESET_VALID)
    db.add(
        PasswordLink(
            token_hash=token_digest(token),
            operator_id=operator.id,
            purpose=purpose,
            created_by_id=actor.id,
            expires_at=expires_at,
        )
    )
    await db.flush()
    return Issued(operator, link_token=token, expires_at=expires_at)


async def invite(db: AsyncSession, actor: Operator, data: InviteInput) -> Issued:
    require_admin(actor)
    await _check_branch(db, data.branch_id)
    operator = Operator(
        email=data.email,
        display_name=data.display_name,
        role=data.role,
        branch_id=data.branch_id,
        languages=data.languages,
        password_hash=PENDING,
    )
    async with _unique_email(db):
        db.add(operator)
    issued = await _issue(db, actor, operator, INVITE, data.delivery)
    audit.record_change(
        db,
        "operator.invited",
        operator_id=actor.id,
        subject={"target_operator_id": operator.id, "delivery": data.delivery},
        before=None,
        after=_snapshot(operator),
    )
    return issued


async def reset_password(db: AsyncSession, actor: Operator, operator_id: int, delivery: str) -> Issued:
    """A new link (or password) for an operator who cannot sign in; their sessions end."""
    require_admin(actor)
    operator = await get_account(db, operator_id, lock=True)
    if not operator.is_active:
        raise Invalid(N_("Reactivate the operator first."))
    issued = await _issue(db, actor, operator, INVITE if is_pending(operator) else RESET, delivery)
    ended = await _end_sessions(db, operator.id)
    audit.record(
        db,
        "operator.password_reset",
        operator_id=actor.id,
        details={"target_operator_id": operator.id, "delivery": delivery, "sessions_ended": ended},
    )
    return issued


async def _active_admins_besides(db: AsyncSession, operator_id: int) -> int:
    return await db.scalar(
        select(func.count())
        .select_from(Operator)
        .where(Operator.role == OperatorRole.ADMIN, Operator.is_active, Operator.id != operator_id)
    )


async def update_account(db: AsyncSession, actor: Operator, operator_id: int, data: AccountInput) -> Operator:
    require_admin(actor)
    await _check_branch(db, data.branch_id)
    operator = await get_account(db, operator_id, lock=True)
    if operator.role != data.role:
        if operator.id == actor.id:
            raise Invalid(N_("You cannot change your own role."), field="role")
        if operator.role == OperatorRole.ADMIN and not await _active_admins_besides(db, operator.id):
            raise Invalid(N_("At least one active administrator must remain."), field="role")
    before = _snapshot(operator)
    async with _unique_email(db):
        operator.email, operator.display_name = data.email, data.display_name
        operator.role, operator.branch_id, operator.languages = data.role, data.branch_id, data.languages
    audit.record_change(
        db,
        "operator.updated",
        operator_id=actor.id,
        subject={"target_operator_id": operator.id},
        before=before,
        after=_snapshot(operator),
    )
    return operator


async def _end_sessions(db: AsyncSession, operator_id: int, *, keep: int | None = None) -> int:
    query = delete(WebSession).where(WebSession.operator_id == operator_id)
    if keep is not None:
        query = query.where(WebSession.id != keep)
    return (await db.execute(query)).rowcount or 0


async def deactivate(db: AsyncSession, actor: Operator, operator_id: int) -> list[int]:
    """The operator can no longer sign in (their sessions end now) and is offline; their open
    conversations go back to their branch's pool and to the first free operator there. Returns
    those conversations' ids."""
    require_admin(actor)
    operator = await get_account(db, operator_id, lock=True)
    if operator.id == actor.id:
        raise Invalid(N_("You cannot deactivate yourself."))
    if not operator.is_active:
        return []
    if operator.role == OperatorRole.ADMIN and not await _active_admins_besides(db, operator.id):
        raise Invalid(N_("At least one active administrator must remain."))
    previous = operator.status
    operator.is_active = False
    operator.status = OperatorStatus.OFFLINE
    operator.status_changed_at = datetime.now(UTC)
    ended = await _end_sessions(db, operator.id)
    await db.execute(
        update(PasswordLink)
        .where(PasswordLink.operator_id == operator.id, PasswordLink.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
    )
    conversations = (
        await db.scalars(
            select(Conversation)
            .where(Conversation.assignee_id == operator.id, Conversation.status.in_(LIVE))
            .order_by(Conversation.id)
            .with_for_update()
        )
    ).all()
    for conversation in conversations:
        await set_assignee(db, conversation, None, action="conversation.returned", actor_operator_id=actor.id)
        if conversation.branch_id is not None:
            # the workflow reassigns it (first free operator of the branch, else the pool)
            notice = ConversationNotice(
                kind=NoticeKind.TRANSFER, operator_id=actor.id, target_branch_id=conversation.branch_id
            )
            await add_notice(db, conversation.id, notice)
    returned = [c.id for c in conversations]
    await publish(
        db,
        OperatorStatusChanged(
            operator_id=operator.id,
            branch_id=operator.branch_id,
            status=OperatorStatus.OFFLINE,
            previous_status=previous,
        ),
    )
    audit.record(
        db,
        "operator.deactivated",
        operator_id=actor.id,
        details={
            "target_operator_id": operator.id,
            "before": {"is_active": True},
            "after": {"is_active": False},
            "sessions_ended": ended,
            "conversations_returned": returned,
        },
    )
    return returned


async def reactivate(db: AsyncSession, actor: Operator, operator_id: int) -> Operator:
    require_admin(actor)
    operator = await get_account(db, operator_id, lock=True)
    if not operator.is_active:
        operator.is_active = True
        audit.record_change(
            db,
            "operator.reactivated",
            operator_id=actor.id,
            subject={"target_operator_id": operator.id},
            before={"is_active": False},
            after={"is_active": True},
        )
    return operator


# -- the links an operator opens --------------------------------------------------------------


async def open_link(db: AsyncSession, token: str, *, lock: bool = False) -> tuple[PasswordLink, Operator] | None:
    """The link and its operator while it may still be used (unused, unexpired, account active)."""
    if not token or len(token) > 100:
        return None
    query = (
        select(PasswordLink, Operator)
        .join(Operator, Operator.id == PasswordLink.operator_id)
        .where(
            PasswordLink.token_hash == token_digest(token),
            PasswordLink.used_at.is_(None),
            PasswordLink.expires_at > datetime.now(UTC),
            Operator.is_active,
        )
    )
    if lock:
        query = query.with_for_update()
    row = (await db.execute(query)).first()
    return None if row is None else (row.PasswordLink, row.Operator)


async def use_link(db: AsyncSession, token: str, data: PasswordInput) -> Operator | None:
    """Set the password the link was for; the link is spent. None when it cannot be used."""
    opened = await open_link(db, token, lock=True)
    if opened is None:
        return None
    link, operator = opened
    link.used_at = datetime.now(UTC)
    operator.password_hash = hash_password(data.password)
    ended = await _end_sessions(db, operator.id)
    audit.record(
        db, "operator.password_set", operator_id=operator.id, details={"purpose": link.purpose, "sessions_ended": ended}
    )
    return operator
