"""Helpers for REST API tests: tokens issued through the service, clients that send them, and
answers checked to be problem+json."""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api_tokens import create_token


async def issue_token(
    factory: async_sessionmaker[AsyncSession],
    *,
    branch_ids: Iterable[int] | None = None,
    can_write: bool = True,
    name: str = "CRM",
) -> str:
    async with factory() as db, db.begin():
        return (await create_token(db, None, name=name, branch_ids=branch_ids, can_write=can_write)).secret


def client(base_url: str, secret: str | None = None, **kw) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, **kw)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"], body
    return body
