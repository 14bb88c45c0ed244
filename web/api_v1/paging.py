"""What every list of the API shares: ids as the database holds them, page sizes, and the page
envelope with its opaque cursor."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query, Response
from pydantic import BaseModel, Field

MAX_ID = 2**63 - 1
T = TypeVar("T")

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=200, description="The `next_cursor` of the previous page; leave out for the first page."),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def json_response(body: BaseModel) -> Response:
    """A model already built by the route, serialised once: FastAPI would validate it against
    the route's response model again (half of a list's cost)."""
    return Response(body.model_dump_json(), media_type="application/json")
