"""Labels: the ones admins made, and the set a conversation carries (read, or replaced whole)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from domain.contracts import RowId
from services import labels
from services.visibility import integration, load_conversation
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.paging import IdPath
from web.deps import SessionDep

router = APIRouter(tags=["labels"])


class LabelOut(BaseModel):
    id: int
    name: str
    colour: str = Field(description="#rrggbb")


class LabelSet(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label_ids": [1, 4]}]})

    label_ids: list[RowId] = Field(max_length=100, description="Exactly the labels it carries from now on.")


async def _carried(db, conversation_id: int) -> list[LabelOut]:
    found = (await labels.labels_by_conversation(db, [conversation_id])).get(conversation_id, [])
    return [LabelOut(id=label.id, name=label.name, colour=label.colour) for label in found]


@router.get("/labels", summary="List labels")
async def list_(token: TokenDep, db: SessionDep) -> list[LabelOut]:
    return [LabelOut(id=label.id, name=label.name, colour=label.colour) for label in await labels.list_labels(db)]


@router.get("/conversations/{conversation_id:int}/labels", summary="A conversation's labels")
async def of_conversation(conversation_id: IdPath, token: TokenDep, db: SessionDep) -> list[LabelOut]:
    await load_conversation(db, integration(token), conversation_id)
    return await _carried(db, conversation_id)


@router.put(
    "/conversations/{conversation_id:int}/labels", summary="Set a conversation's labels", responses=WRITE_ERRORS
)
async def set_(conversation_id: IdPath, wanted: LabelSet, token: WriterDep, db: SessionDep) -> list[LabelOut]:
    """Replaces the set: labels left out are taken off, so sending the same set again changes nothing."""
    await labels.set_conversation_labels(db, token, conversation_id, wanted.label_ids)
    out = await _carried(db, conversation_id)
    await db.commit()
    return out
