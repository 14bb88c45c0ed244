"""Labels (a name and a colour) and the conversations that carry them.

Admins manage the labels; whoever may see a conversation may label it (the cabinet's and the
API's label actions). Every change is audited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import INT64_MAX
from domain.wording import N_, invalid
from infra.models import ApiToken, ConversationLabel, Label, Operator
from services import audit
from services.errors import Forbidden, Invalid, unique_or_invalid
from services.operators import require_admin
from services.visibility import Caller, load_conversation, require_write, viewer_of

_COLOUR = re.compile(r"#[0-9a-f]{6}")
NAME_MAX = 50
# what a new label is given when the form is left as it is
DEFAULT_COLOUR = "#1d5cbf"


class LabelInput(BaseModel):
    """A label as a form or the API sends it."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX)
    colour: str = DEFAULT_COLOUR

    @field_validator("colour")
    @classmethod
    def _hex_colour(cls, value: str) -> str:
        value = value.lower()
        if not _COLOUR.fullmatch(value):
            raise invalid(N_("Choose a colour as #rrggbb."))
        return value


def _snapshot(label: Label) -> dict[str, str]:
    return {"name": label.name, "colour": label.colour}


async def list_labels(db: AsyncSession) -> list[Label]:
    return list((await db.scalars(select(Label).order_by(func.lower(Label.name)))).all())


async def _label(db: AsyncSession, label_id: int) -> Label:
    label = await db.get(Label, label_id, with_for_update=True)
    if label is None:
        raise Forbidden()
    return label


def _unique_name(db: AsyncSession):
    return unique_or_invalid(db, N_("A label with this name exists already."), field="name")


async def create_label(db: AsyncSession, actor: Operator, data: LabelInput) -> Label:
    require_admin(actor)
    label = Label(name=data.name, colour=data.colour)
    async with _unique_name(db):
        db.add(label)
    audit.record_change(
        db, "label.created", operator_id=actor.id, subject={"label_id": label.id}, before=None, after=_snapshot(label)
    )
    return label


async def update_label(db: AsyncSession, actor: Operator, label_id: int, data: LabelInput) -> Label:
    require_admin(actor)
    label = await _label(db, label_id)
    before = _snapshot(label)
    async with _unique_name(db):
        label.name, label.colour = data.name, data.colour
    audit.record_change(
        db, "label.updated", operator_id=actor.id, subject={"label_id": label.id}, before=before, after=_snapshot(label)
    )
    return label


async def delete_label(db: AsyncSession, actor: Operator, label_id: int) -> None:
    """Also takes it off every conversation (the rows cascade)."""
    require_admin(actor)
    label = await _label(db, label_id)
    audit.record_change(
        db, "label.deleted", operator_id=actor.id, subject={"label_id": label.id}, before=_snapshot(label), after=None
    )
    await db.delete(label)
    await db.flush()


async def set_conversation_labels(
    db: AsyncSession, caller: Caller, conversation_id: int, label_ids: Iterable[int]
) -> list[int]:
    """Make the conversation carry exactly `label_ids` (ids that are no label are refused);
    returns them sorted. An operator who may see the conversation may label it; a token needs
    to be a read-write one of its branches."""
    viewer = viewer_of(caller)
    conversation = await load_conversation(db, viewer, conversation_id, lock=True)
    if isinstance(caller, ApiToken):
        require_write(viewer, conversation)
    wanted = set(label_ids)
    if any(not 0 < label_id <= INT64_MAX for label_id in wanted):
        raise Invalid(N_("That label does not exist any more."), field="labels")
    known = set((await db.scalars(select(Label.id).where(Label.id.in_(wanted)))).all()) if wanted else set()
    if wanted - known:
        raise Invalid(N_("That label does not exist any more."), field="labels")
    current = set(
        (
            await db.scalars(
                select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == conversation.id)
            )
        ).all()
    )
    added, removed = sorted(wanted - current), sorted(current - wanted)
    if removed:
        await db.execute(
            delete(ConversationLabel).where(
                ConversationLabel.conversation_id == conversation.id, ConversationLabel.label_id.in_(removed)
            )
        )
    if added:
        await db.execute(
            insert(ConversationLabel), [{"conversation_id": conversation.id, "label_id": i} for i in added]
        )
    if added or removed:
        audit.record(
            db,
            "conversation.labels",
            operator_id=None if isinstance(caller, ApiToken) else caller.id,
            token_id=caller.id if isinstance(caller, ApiToken) else None,
            conversation_id=conversation.id,
            details={"added": added, "removed": removed},
        )
    return sorted(wanted)


async def labels_by_conversation(db: AsyncSession, conversation_ids: Iterable[int]) -> dict[int, list[Label]]:
    """The labels each of these conversations carries, by name (for list rows and threads)."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    rows = await db.execute(
        select(ConversationLabel.conversation_id, Label)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(ids))
        .order_by(func.lower(Label.name))
    )
    found: dict[int, list[Label]] = {}
    for conversation_id, label in rows:
        found.setdefault(conversation_id, []).append(label)
    return found
