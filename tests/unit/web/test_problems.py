"""A service's typed refusal reaches an API client as problem+json with its code."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.errors import ContactUnreachable, Invalid
from web import problems


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/api/v1/reply")
    async def reply() -> None:
        raise ContactUnreachable("The customer has blocked or stopped this bot.")

    @app.post("/api/v1/other")
    async def other() -> None:
        raise Invalid("Choose either an operator or a branch.")

    return app


async def test_an_unreachable_contact_is_a_422_with_its_code() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://test") as api:
        refused = await api.post("/api/v1/reply")
        other = await api.post("/api/v1/other")
    assert (refused.status_code, refused.headers["content-type"]) == (422, "application/problem+json")
    assert refused.json()["code"] == "contact_unreachable"
    assert refused.json()["detail"] == "The customer has blocked or stopped this bot."
    assert other.json()["code"] == "invalid"
