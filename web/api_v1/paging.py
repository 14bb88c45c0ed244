"""What every list of the API shares: ids as the database holds them, page sizes, and the page
envelope with its opaque cursor."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path, Query
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
