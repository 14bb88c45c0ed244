"""What the open workspace tells the server and asks of it while it runs: the operator's typing
(shown to colleagues, relayed to the customer's messenger), who has a conversation open, and the
counters (tabs, the unread badge and the tab title) after a live event or a reconnect.

Typing and presence are live-only events (domain/events.py, not stored or replayed): a page
that opens later learns who is there because each page answers a colleague's arrival with its
own presence.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import JSONResponse, Response

from domain.events import OperatorPresence, OperatorTyping
from infra.event_log import conversation_ids, publish
from services.inbox import marks_read, tab_counts, unread_conversations
from services.visibility import staff
from web.cabinet.inbox import is_supervisor
from web.deps import ConversationDep, CsrfChecked, PageDep, SessionDep

router = APIRouter()


@router.post("/conversations/{conversation_id}/typing", status_code=204, dependencies=[CsrfChecked])
async def typing(
    page: PageDep, db: SessionDep, conversation: ConversationDep, note: Annotated[bool, Form()] = False
) -> Response:
    """The operator is typing: colleagues see it at once; the customer's messenger or website
    widget shows it too (at most once per interval per conversation), unless it is a note or
    they only watch."""
    operator = page.operator
    assert operator is not None
    await publish(db, OperatorTyping.of(conversation_ids(conversation), operator_id=operator.id))
    await db.commit()
    if not note and marks_read(staff(operator), conversation):
        state = page.request.app.state
        await state.typing.conversation_typing(
            state.sessionmaker, state.credential_box, conversation.id, operator_id=operator.id
        )
    return Response(status_code=204)


@router.post("/conversations/{conversation_id}/presence", status_code=204, dependencies=[CsrfChecked])
async def presence(
    page: PageDep, db: SessionDep, conversation: ConversationDep, viewing: Annotated[bool, Form()]
) -> Response:
    operator = page.operator
    assert operator is not None
    await publish(db, OperatorPresence.of(conversation_ids(conversation), operator_id=operator.id, viewing=viewing))
    await db.commit()
    return Response(status_code=204)


@router.get("/inbox/counts")
async def counts(page: PageDep, db: SessionDep) -> JSONResponse:
    """The tabs' counts and the unread badge, as the page shows them now."""
    operator = page.operator
    assert operator is not None
    tabs = await tab_counts(db, operator, with_all=is_supervisor(operator))
    unread = await unread_conversations(db, operator)
    return JSONResponse(
        {"mine": tabs.mine, "unassigned": tabs.unassigned, "all": tabs.all, "unread": unread},
        headers={"Cache-Control": "no-store"},
    )
