"""What the REST API accepts at its door: JSON bodies (415 otherwise) of at most
MAX_BODY_BYTES (413), answered as problem+json before a route reads anything."""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from web.problems import problem

MAX_BODY_BYTES = 1024 * 1024
_WITH_BODY = {"POST", "PUT", "PATCH"}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class BodyLimits:
    """ASGI middleware for the paths under `prefix`."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix) or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        length = headers.get("content-length")
        chunked = "transfer-encoding" in headers
        if length is not None and not length.isdigit():
            await problem(400, HTTPStatus(400).phrase, "Content-Length is not a number.")(scope, receive, send)
            return
        if length is not None and int(length) > MAX_BODY_BYTES:
            await self._too_large(scope, receive, send)
            return
        if (chunked or (length and int(length) > 0)) and not _is_json(headers.get("content-type", "")):
            await problem(415, HTTPStatus(415).phrase, "Send the body as application/json.")(scope, receive, send)
            return
        await self.app(scope, _counting(receive), send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The body may have at most {MAX_BODY_BYTES} bytes."
        await problem(413, HTTPStatus(413).phrase, detail)(scope, receive, send)


def _counting(receive: Receive) -> Receive:
    """A body sent without Content-Length is counted as it arrives; past the limit the route's
    body read raises, and the app's handler answers 413."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise HTTPException(413, f"The body may have at most {MAX_BODY_BYTES} bytes.")
        return message

    return counted
