"""Signed-in HTTP clients for the settings pages: one per role, each with its session cookie and
CSRF token, talking to the live app over real HTTP."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from domain.enums import OperatorRole
from infra.models import Branch, Operator
from infra.security import hash_password
from tests.conftest import LiveServer

PASSWORD = "staff-password"
HTML = {"accept": "text/html"}
_HASH = hash_password(PASSWORD)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@dataclass
class Client:
    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str, **kwargs) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(self, path: str, data: dict | list | None = None, **kwargs) -> httpx.Response:
        """A form post with the session's CSRF token (a list of pairs repeats fields)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        fields: dict[str, list[str]] = {"csrf_token": [self.csrf]}
        for name, value in pairs:
            fields.setdefault(name, []).extend(value if isinstance(value, list) else [str(value)])
        return await self.http.post(path, data=fields, **kwargs)


async def add_staff(factory, role: OperatorRole, email: str, name: str, branch_id: int | None = None) -> int:
    async with factory() as db, db.begin():
        if branch_id is None:
            branch_id = await db.scalar(select(Branch.id).where(Branch.is_default))
        operator = Operator(email=email, display_name=name, password_hash=_HASH, role=role, branch_id=branch_id)
        db.add(operator)
        await db.flush()
        return operator.id


async def sign_in(base_url: str, email: str, password: str = PASSWORD) -> Client:
    http = httpx.AsyncClient(base_url=base_url, headers=HTML)
    form = await http.get("/login")
    answer = await http.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    home = await http.get("/")
    return Client(http, csrf_of(home.text))


@pytest.fixture
async def https_api(app_settings):
    """The app as deployed behind https://switchboard.test: bots are connected by webhook (tests
    post the provider's updates to its real address themselves)."""
    from api import create_app

    server = await asyncio.to_thread(
        LiveServer(create_app(app_settings.model_copy(update={"public_url": "https://switchboard.test"}))).start
    )
    yield server
    await asyncio.to_thread(server.stop)
