"""Canned replies: prepared answers an operator inserts with "/" + a shortcut.

A reply is global (every branch sees it) or one branch's; a branch's reply hides a global one
with the same shortcut. The text is Markdown-lite (rendered later by `channels/text.py`, like
any reply) with variables in braces, filled in when inserted: see VARIABLES.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import RowId
from domain.wording import N_, invalid
from infra.models import Branch, CannedReply, Operator
from services import audit
from services.errors import Forbidden, Invalid, unique_or_invalid
from services.operators import require_admin

SHORTCUT_MAX = 50
TEXT_MAX = 4000
# {name} -> msgid describing it (shown beside the editor)
VARIABLES = {
    "contact_name": N_("the customer's name"),
    "operator_name": N_("the name of the operator who answers"),
}
_VARIABLE = re.compile(r"\{(\w+)\}")
# letters of any script, digits, "_" and "-": typed after "/" in the composer, so no spaces
_SHORTCUT = re.compile(r"[\w-]+")


class CannedReplyInput(BaseModel):
    """A canned reply as a form or the API sends it; `branch_id` None makes it global."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    branch_id: RowId | None = None
    shortcut: str = Field(min_length=1, max_length=SHORTCUT_MAX)
    text: str = Field(min_length=1, max_length=TEXT_MAX)

    @field_validator("shortcut")
    @classmethod
    def _one_word(cls, value: str) -> str:
        value = value.removeprefix("/")
        if not _SHORTCUT.fullmatch(value):
            raise invalid(N_("Use letters, digits, - and _ only, without spaces."))
        return value

    @field_validator("text")
    @classmethod
    def _known_variables(cls, value: str) -> str:
        unknown = sorted({name for name in _VARIABLE.findall(value) if name not in VARIABLES})
        if unknown:
            raise invalid(
                N_("Unknown variable %(names)s. Available: %(known)s."),
                names=", ".join(f"{{{n}}}" for n in unknown),
                known=", ".join(f"{{{n}}}" for n in VARIABLES),
            )
        return value


@dataclass(frozen=True)
class Filled:
    """A canned reply ready for the composer."""

    id: int
    shortcut: str
    text: str
    branch_id: int | None


def fill(text: str, *, contact_name: str, operator_name: str) -> str:
    """The text with its variables replaced (anything else in braces stays as written)."""
    values = {"contact_name": contact_name, "operator_name": operator_name}
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _snapshot(reply: CannedReply) -> dict[str, object]:
    return {"branch_id": reply.branch_id, "shortcut": reply.shortcut, "text": reply.text}


async def list_all(db: AsyncSession) -> list[CannedReply]:
    """Every canned reply, global ones first, then by branch and shortcut (the admin's list)."""
    query = select(CannedReply).order_by(
        CannedReply.branch_id.is_not(None), CannedReply.branch_id, func.lower(CannedReply.shortcut)
    )
    return list((await db.scalars(query)).all())


async def for_branch(
    db: AsyncSession, branch_id: int | None, *, prefix: str = "", limit: int = 50
) -> list[CannedReply]:
    """What an operator of `branch_id` may insert: the branch's replies and the global ones (a
    branch's hides a global one of the same shortcut), by shortcut, optionally only those whose
    shortcut starts with `prefix` (case-insensitive)."""
    query = select(CannedReply).where(
        or_(CannedReply.branch_id.is_(None), CannedReply.branch_id == branch_id)
        if branch_id is not None
        else CannedReply.branch_id.is_(None)
    )
    prefix = prefix.strip().removeprefix("/").lower()
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(CannedReply.shortcut).like(f"{escaped}%", escape="\\"))
    # the branch's own first, so it wins the shortcut below
    rows = (await db.scalars(query.order_by(CannedReply.branch_id.is_(None), CannedReply.id))).all()
    chosen: dict[str, CannedReply] = {}
    for reply in rows:
        chosen.setdefault(reply.shortcut.lower(), reply)
    return sorted(chosen.values(), key=lambda r: r.shortcut.lower())[:limit]


async def search(
    db: AsyncSession, operator: Operator, prefix: str, *, contact_name: str = "", limit: int = 10
) -> list[Filled]:
    """The composer's "/" + prefix: the operator's branch's and global replies, filled in."""
    replies = await for_branch(db, operator.branch_id, prefix=prefix, limit=limit)
    return [
        Filled(
            r.id, r.shortcut, fill(r.text, contact_name=contact_name, operator_name=operator.display_name), r.branch_id
        )
        for r in replies
    ]


async def _reply(db: AsyncSession, reply_id: int) -> CannedReply:
    reply = await db.get(CannedReply, reply_id, with_for_update=True)
    if reply is None:
        raise Forbidden()
    return reply


async def _check(db: AsyncSession, data: CannedReplyInput) -> None:
    if data.branch_id is not None and await db.get(Branch, data.branch_id) is None:
        raise Invalid(N_("That branch does not exist."), field="branch_id")


def _unique_shortcut(db: AsyncSession):
    return unique_or_invalid(db, N_("This shortcut is taken in that branch already."), field="shortcut")


async def create(db: AsyncSession, actor: Operator, data: CannedReplyInput) -> CannedReply:
    require_admin(actor)
    await _check(db, data)
    reply = CannedReply(branch_id=data.branch_id, shortcut=data.shortcut, text=data.text)
    async with _unique_shortcut(db):
        db.add(reply)
    audit.record_change(
        db,
        "canned_reply.created",
        operator_id=actor.id,
        subject={"canned_reply_id": reply.id},
        before=None,
        after=_snapshot(reply),
    )
    return reply


async def update(db: AsyncSession, actor: Operator, reply_id: int, data: CannedReplyInput) -> CannedReply:
    require_admin(actor)
    await _check(db, data)
    reply = await _reply(db, reply_id)
    before = _snapshot(reply)
    async with _unique_shortcut(db):
        reply.branch_id, reply.shortcut, reply.text = data.branch_id, data.shortcut, data.text
        reply.updated_at = datetime.now(UTC)
    audit.record_change(
        db,
        "canned_reply.updated",
        operator_id=actor.id,
        subject={"canned_reply_id": reply.id},
        before=before,
        after=_snapshot(reply),
    )
    return reply


async def delete(db: AsyncSession, actor: Operator, reply_id: int) -> None:
    require_admin(actor)
    reply = await _reply(db, reply_id)
    audit.record_change(
        db,
        "canned_reply.deleted",
        operator_id=actor.id,
        subject={"canned_reply_id": reply.id},
        before=_snapshot(reply),
        after=None,
    )
    await db.delete(reply)
    await db.flush()
