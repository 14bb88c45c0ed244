"""The inbox: tabs Mine / Unassigned / All, filters, search and cursor pages of conversation rows.

`/` is the inbox with no conversation open; `/conversations/{id}` (web/cabinet/conversation.py)
is the same workspace with one open. Both draw rows only through
`partials/_conversation_row.html`; an HTMX request for the list gets only the `rows` block, and
`GET /conversations/{id}/row` answers one row as the current filters draw it (live updates), or
nothing when the conversation no longer belongs in that list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ChannelKind, ConversationStatus, OperatorRole
from infra.models import Inbox, Label, Operator
from services import labels as label_service
from services.conversation_list import SEARCH_MAX, ConversationFilter, Cursor, Sort, descending, list_conversations
from services.errors import Invalid
from services.inbox import LIVE, RowExtras, TabCounts, row_extras, tab_counts
from services.visibility import staff
from web.deps import ConversationDep, PageDep, SessionDep
from web.templating import PageContext, render

router = APIRouter()

PAGE_SIZE = 50
TABS = ("mine", "unassigned", "all")
STATUSES = ("live", "snoozed", "open", "pending", "resolved", "closed", "any")


class ListQuery(BaseModel):
    """The list as the browser asked for it (query string); anything unreadable is ignored so a
    stale or edited link still shows a list."""

    tab: str = "mine"
    status: str = "live"
    channel: ChannelKind | None = None
    inbox: int | None = Field(default=None, gt=0, lt=2**63)
    label: int | None = Field(default=None, gt=0, lt=2**63)
    unanswered: bool = False
    q: str = Field(default="", max_length=SEARCH_MAX)
    sort: Sort = Sort.ACTIVITY

    @classmethod
    def read(cls, params: dict[str, str], operator: Operator) -> ListQuery:
        known = {k: v for k, v in params.items() if k in cls.model_fields and v != ""}
        try:
            wanted = cls.model_validate(known)
        except ValidationError as error:
            bad = {str(e["loc"][0]) for e in error.errors()}
            wanted = cls.model_validate({k: v for k, v in known.items() if k not in bad})
        if wanted.tab not in TABS or (wanted.tab == "all" and not is_supervisor(operator)):
            wanted = wanted.model_copy(update={"tab": "mine"})
        if wanted.status not in STATUSES:
            wanted = wanted.model_copy(update={"status": "live"})
        return wanted

    @property
    def descending(self) -> bool:
        return descending(self.sort)

    def encode(self, **changes: Any) -> str:
        """The query string of this list (with `changes`), defaults left out: '' or '?...'."""
        values = {name: getattr(self, name) for name in type(self).model_fields} | changes
        return _query_string(tuple(values.items()))

    def conversation_filter(self, operator: Operator) -> ConversationFilter:
        snoozed = None
        if self.status in ("live", "snoozed"):
            statuses: list[ConversationStatus] | None = list(LIVE)
            snoozed = self.status == "snoozed"  # the live ones are those not snoozed
        elif self.status == "any":
            statuses = None
        else:
            statuses = [ConversationStatus(self.status)]
        wanted = ConversationFilter(
            status=statuses,
            channel=self.channel,
            inbox_id=self.inbox,
            label_id=self.label,
            unanswered=True if self.unanswered else None,
            snoozed=snoozed,
            search=self.q.strip() or None,
        )
        if self.tab == "mine":
            return wanted.model_copy(update={"assignee_id": operator.id})
        if self.tab == "unassigned":
            return wanted.model_copy(update={"unassigned": True, "branch_id": operator.branch_id})
        return wanted


@lru_cache(maxsize=1024)
def _query_string(values: tuple[tuple[str, Any], ...]) -> str:
    """Kept: every row of a list links with its list's query string (20 us to build anew)."""
    defaults = ListQuery().model_dump()
    kept = {k: (v.value if hasattr(v, "value") else v) for k, v in values if v != defaults.get(k)}
    kept = {k: ("1" if v is True else v) for k, v in kept.items()}
    return "?" + urlencode(kept) if kept else ""


def is_supervisor(operator: Operator) -> bool:
    return operator.role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN)


@dataclass(frozen=True, slots=True)
class RowView:
    """What `partials/_conversation_row.html` draws for one conversation."""

    c: Row
    extras: RowExtras
    tags: list[Label]
    unanswered: bool
    selected: bool = False


def unanswered(row: Row) -> bool:
    """Seed 004's marker: the customer wrote last and nobody answered (as the list filter)."""
    return (
        row.status in LIVE
        and row.last_in_at is not None
        and (row.last_out_at is None or row.last_in_at > row.last_out_at)
    )


async def row_views(
    db: AsyncSession, operator: Operator, rows: list[Row], selected: int | None = None
) -> list[RowView]:
    ids = [row.id for row in rows]
    extras = await row_extras(db, operator, ids)
    tags = await label_service.labels_by_conversation(db, ids)
    empty = RowExtras("", False, 0)
    return [
        RowView(row, extras.get(row.id, empty), tags.get(row.id, []), unanswered(row), row.id == selected)
        for row in rows
    ]


@dataclass(frozen=True)
class InboxList:
    """The list pane: its query, tab counts, the rows of this page and the next page's cursor."""

    query: ListQuery
    counts: TabCounts
    rows: list[RowView]
    next_cursor: str | None
    inboxes: list[Inbox]
    labels: list[Label]
    names: dict[int, str]  # every operator's name by id (presence and typing name them)
    error: str | None = None


async def inbox_list(
    db: AsyncSession, page: PageContext, params: dict[str, str], *, selected: int | None = None
) -> InboxList:
    operator = page.operator
    assert operator is not None
    query = ListQuery.read(params, operator)
    error = None
    after = None
    if cursor := params.get("cursor"):
        try:
            after = Cursor.decode(cursor[:200], query.sort)
        except Invalid:
            error = page.gettext("That page of the list is no longer there: showing the first one.")
    rows, next_cursor = await list_conversations(
        db, staff(operator), query.conversation_filter(operator), sort=query.sort, after=after, limit=PAGE_SIZE
    )
    views = await row_views(db, operator, rows, selected)
    counts = await tab_counts(db, operator, with_all=is_supervisor(operator))
    inboxes = list((await db.scalars(select(Inbox).where(Inbox.is_active).order_by(Inbox.name))).all())
    labels = await label_service.list_labels(db)
    names = {row.id: row.display_name for row in await db.execute(select(Operator.id, Operator.display_name))}
    cursor_out = next_cursor.encode() if next_cursor else None
    return InboxList(query, counts, views, cursor_out, inboxes, labels, names, error)


@router.get("/", response_class=HTMLResponse, name="home")
async def inbox(page: PageDep, db: SessionDep) -> HTMLResponse:
    listing = await inbox_list(db, page, dict(page.request.query_params))
    context = {"inbox": listing, "thread": None, "list_query": listing.query, "temporal_ui": ""}
    return render(page, "cabinet/inbox.html", context, block="rows")


@router.get("/conversations/{conversation_id}/row", response_class=HTMLResponse)
async def conversation_row(
    page: PageDep, db: SessionDep, conversation: ConversationDep, selected: Annotated[bool, Query()] = False
) -> Response:
    """One row as the list with these query parameters draws it, for a live update; 204 when the
    conversation does not belong in that list (the page removes its row)."""
    operator = page.operator
    assert operator is not None
    query = ListQuery.read(dict(page.request.query_params), operator)
    wanted = replace_filter(query.conversation_filter(operator), conversation.id)
    rows, _ = await list_conversations(db, staff(operator), wanted, sort=query.sort, limit=1)
    if not rows:
        return Response(status_code=204)
    (view,) = await row_views(db, operator, rows, conversation.id if selected else None)
    return render(page, "partials/_conversation_row.html", {"item": view, "list_query": query, "oob": False})


def replace_filter(wanted: ConversationFilter, conversation_id: int) -> ConversationFilter:
    return wanted.model_copy(update={"conversation_id": conversation_id})
