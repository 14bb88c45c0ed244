"""GET /events: the cabinet's Server-Sent Events stream (session-authenticated).

Every event the signed-in operator may see (domain.visibility), as `id:`/`event:`/`data:`
frames in commit order; `Last-Event-ID` (the header EventSource sends on reconnect, or
`?last_event_id=`) resumes after that event; comment lines every 15 s keep proxies from
closing an idle stream.

A plain ASGI endpoint, not sse-starlette: measured on our 2-core machines with 10,000 idle
streams, sse-starlette holds ~49 KB per connection (four tasks and their cancel scopes each),
this one ~19 KB (bench.realtime); the goal is 10,000 subscribers per api process in at most
25 KB each. One task per stream writes; one small task waits for the disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from domain.visibility import Staff, Viewer
from infra import metrics
from infra.realtime import Hub, Subscriber
from web.deps import load_session
from web.presence import StreamPresence
from web.problems import problem

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]
# EventSource reconnects after this long; then its Last-Event-ID resumes the stream.
OPENING = b"retry: 2000\n\n"


async def _until_disconnect(receive: Receive, sub: Subscriber) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    sub.close()


class EventStream:
    """`viewer_of` says whose stream a request opens (the cabinet's signed-in staff by default,
    a widget visitor in web/widget), or raises Refused."""

    def __init__(self, viewer_of: Callable[[Request], Awaitable[Viewer]] | None = None) -> None:
        self._viewer_of = viewer_of or staff_viewer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        hub: Hub = request.app.state.hub
        try:
            viewer = await self._viewer_of(request)
            last_event_id = _last_event_id(request)
        except Refused as refused:
            await refused.response(scope, receive, send)
            return
        # an operator's open stream is an open tab of theirs (web/presence.py)
        presence: StreamPresence | None = request.app.state.presence if isinstance(viewer, Staff) else None
        del request  # a stream lives for hours: keep only what it needs
        sub = hub.subscribe(viewer, last_event_id)
        if presence is not None:
            presence.opened(viewer.operator_id)
        metrics.SSE_CONNECTIONS.inc()
        sub.task = asyncio.current_task()
        watcher = asyncio.create_task(_until_disconnect(receive, sub))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": OPENING, "more_body": True})
            if sub.replaying:
                await hub.replay(sub)
            while (body := await sub.next_frames()) is not None:
                sub.sending = True
                await send({"type": "http.response.body", "body": body, "more_body": True})
                sub.sending = False
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if sub.sending:
                return  # cut off while its client stopped reading: the server drops the socket
            # the server is shutting down: end the stream cleanly; the client reconnects
            # elsewhere (or after the restart) with its Last-Event-ID and misses nothing
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            hub.unsubscribe(sub)
            if presence is not None:
                presence.closed(viewer.operator_id)
            metrics.SSE_CONNECTIONS.dec()
            watcher.cancel()


class Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def staff_viewer(request: Request) -> Staff:
    async with request.app.state.sessionmaker() as db:
        loaded = await load_session(request, db)
    if loaded is None:
        raise Refused(problem(401, "Unauthorized", "Sign in first."))
    operator = loaded[1]
    return Staff(operator.id, operator.role, operator.branch_id)


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise Refused(problem(400, "Bad Request", "Last-Event-ID must be an event id from this stream."))
    return value
