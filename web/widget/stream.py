"""GET /widget/v1/events: the visitor's Server-Sent Events stream, the cabinet's stream
(web/events.py) with the visitor's scope: the events of their own conversation that a customer
may see (domain.visibility.Visitor), resumed with Last-Event-ID. When the inbox's `sse` flag is
off, or no stream can be kept open, the widget polls /widget/v1/poll with the same ids."""

from __future__ import annotations

from http import HTTPStatus

from starlette.requests import Request

from domain.visibility import Visitor
from services.widget_sessions import current_conversation
from web.events import EventStream, Refused
from web.problems import ApiError, problem
from web.widget.access import require, visit

SSE_OFF = "urn:switchboard:problem:widget-sse-off"


async def visitor_viewer(request: Request) -> Visitor:
    try:
        found = await visit(request)
        if not ((found.inbox.settings or {}).get("features") or {}).get("sse", True):
            raise ApiError(403, "Live updates are off for this chat: poll instead.", type=SSE_OFF)
        await require(request, "read", found.session.visitor_id)
    except ApiError as refused:
        phrase = HTTPStatus(refused.status_code).phrase
        raise Refused(
            problem(refused.status_code, phrase, str(refused.detail), type=refused.type, headers=refused.headers)
        ) from None
    async with request.app.state.sessionmaker() as db:
        conversation = await current_conversation(db, found.session)
    if conversation is None:
        raise Refused(problem(404, "Not Found", "Nothing to follow yet: the stream opens after the first message."))
    return Visitor(conversation.id)


stream = EventStream(visitor_viewer)
