"""GET /api/v1/token: the calling token as the API sees it, to check a token and its rights."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from web.api_v1.auth import TokenDep

router = APIRouter(tags=["token"])


class TokenOut(BaseModel):
    id: int
    name: str
    branch_ids: list[int] | None = Field(description="The branches whose conversations it sees; null: every branch.")
    can_write: bool
    created_at: datetime


@router.get("/token", summary="The calling token")
async def this_token(token: TokenDep) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        branch_ids=token.branch_ids,
        can_write=token.can_write,
        created_at=token.created_at,
    )
