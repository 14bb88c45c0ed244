"""The supervisor's pages: the live board (staff and load, what waits, per branch), the unassigned
pool with waiting times, conversations escalated past everyone, and dead letters with retry and
discard. Supervisors and admins only. Each conversation opens in the workspace's thread page,
which shows it to a supervisor read-only and without marking anything read; parked outbox rows
keep their list and Retry on Settings -> Health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.wording import N_
from infra.models import Branch, Contact, Conversation, Operator
from services import deadletters
from services.conversation_list import ConversationFilter, Cursor, list_conversations
from services.errors import Invalid
from services.inbox import LIVE
from services.supervisor import board
from services.visibility import staff
from web.cabinet.inbox import ListQuery, RowView, row_views
from web.deps import CsrfChecked, SessionDep, SupervisorPage
from web.templating import PageContext, render
from web.toasts import ToastLevel

# HTML pages, not the REST API; listed in the OpenAPI schema they also stopped Swagger UI from
# drawing anything past the first few operations (tests/e2e/test_docs.py)
router = APIRouter(prefix="/supervisor", include_in_schema=False)

PAGE_SIZE = 50
INT64_MAX = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=INT64_MAX)]
# rows link to the thread as the supervisor's All tab shows it
ALL = ListQuery(tab="all")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A row of a supervisor's list: the row, how long the customer has waited and where."""

    item: RowView
    waited: timedelta | None
    branch: str


@router.get("", response_class=HTMLResponse, name="supervisor")
async def board_page(page: SupervisorPage, db: SessionDep) -> HTMLResponse:
    """The whole board, or (HTMX, after a live event) only its `board` block; the lists below
    answer likewise with their `live` block."""
    branches = await board(db, page.operator)
    return render(page, "cabinet/supervisor/board.html", {"branches": branches, "tab": "board"}, block="board")


async def _conversations(
    db: AsyncSession, page: PageContext, wanted: ConversationFilter, cursor: str | None
) -> tuple[list[Waiting], str | None, str | None]:
    operator = page.operator
    assert operator is not None
    after, error = None, None
    if cursor:
        try:
            after = Cursor.decode(cursor[:200])
        except Invalid:
            error = page.gettext("That page of the list is no longer there: showing the first one.")
    rows, next_cursor = await list_conversations(db, staff(operator), wanted, after=after, limit=PAGE_SIZE)
    names: dict[int, str] = {row.id: row.name for row in await db.execute(select(Branch.id, Branch.name))}
    now = datetime.now(UTC)
    views = await row_views(db, operator, rows)
    items = [Waiting(view, _waited(view.c, now), names.get(view.c.branch_id, "")) for view in views]
    return items, next_cursor.encode() if next_cursor else None, error


def _waited(row: Row, now: datetime) -> timedelta | None:
    """Since the customer's message nobody has answered (None: they are not waiting)."""
    if row.last_in_at is None or (row.last_out_at is not None and row.last_out_at >= row.last_in_at):
        return None
    return now - row.last_in_at


@router.get("/unassigned", response_class=HTMLResponse, name="supervisor_unassigned")
async def unassigned(
    page: SupervisorPage,
    db: SessionDep,
    branch: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    branches = list((await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))).all())
    chosen = int(branch) if branch.isdigit() and int(branch) in {b.id for b in branches} else None
    wanted = ConversationFilter(status=list(LIVE), unassigned=True, branch_id=chosen)
    items, next_cursor, error = await _conversations(db, page, wanted, cursor)
    context = {
        "items": items,
        "next_cursor": next_cursor,
        "error": error,
        "branches": branches,
        "chosen": chosen,
        "list_query": ALL,
        "tab": "unassigned",
    }
    return render(page, "cabinet/supervisor/unassigned.html", context, block="live")


@router.get("/escalated", response_class=HTMLResponse, name="supervisor_escalated")
async def escalated(
    page: SupervisorPage, db: SessionDep, cursor: Annotated[str, Query(max_length=200)] = ""
) -> HTMLResponse:
    wanted = ConversationFilter(status=list(LIVE), escalation_exhausted=True)
    items, next_cursor, error = await _conversations(db, page, wanted, cursor)
    context = {"items": items, "next_cursor": next_cursor, "error": error, "list_query": ALL, "tab": "escalated"}
    return render(page, "cabinet/supervisor/escalated.html", context, block="live")


@router.get("/dead-letters", response_class=HTMLResponse, name="supervisor_dead_letters")
async def dead_letters(
    page: SupervisorPage, db: SessionDep, before: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None
) -> HTMLResponse:
    operator = page.operator
    assert operator is not None
    letters = await deadletters.list_dead_letters(db, operator, limit=PAGE_SIZE + 1, before_id=before)
    more = len(letters) > PAGE_SIZE
    letters = letters[:PAGE_SIZE]
    names = await _contact_names(db, [m.conversation_id for m in letters])
    context = {
        "letters": letters,
        "names": names,
        "next_before": letters[-1].id if more else None,
        "tab": "dead_letters",
    }
    return render(page, "cabinet/supervisor/dead_letters.html", context, block="live")


async def _contact_names(db: AsyncSession, conversation_ids: list[int]) -> dict[int, str]:
    if not conversation_ids:
        return {}
    found = await db.execute(
        select(Conversation.id, Contact.display_name)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(Conversation.id.in_(conversation_ids))
    )
    return {row.id: row.display_name for row in found}


@router.post("/dead-letters/{message_id}/retry", dependencies=[CsrfChecked])
async def retry_dead_letter(page: SupervisorPage, db: SessionDep, message_id: Id) -> Response:
    return await _act(page, db, message_id, deadletters.retry_dead_letter, N_("Sending again."))


@router.post("/dead-letters/{message_id}/discard", dependencies=[CsrfChecked])
async def discard_dead_letter(page: SupervisorPage, db: SessionDep, message_id: Id) -> Response:
    return await _act(page, db, message_id, deadletters.discard_dead_letter, N_("Discarded: it will not be sent."))


async def _act(
    page: PageContext,
    db: AsyncSession,
    message_id: int,
    action: Callable[[AsyncSession, Operator, int], Awaitable[None]],
    done: str,
) -> Response:
    operator = page.operator
    assert operator is not None
    response = RedirectResponse("/supervisor/dead-letters", status_code=303)
    try:
        await action(db, operator, message_id)
    except Invalid as refusal:
        page.toast(response, ToastLevel.ERROR, page.gettext(refusal.message, **refusal.params))
        return response
    await db.commit()
    page.toast(response, ToastLevel.SUCCESS, page.gettext(done))
    return response
