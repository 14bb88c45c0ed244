"""Every settings route of the app, found in the app itself (so a new route cannot be left out of
the access and junk tests), who may use it, and a world of objects to point its ids at."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from sqlalchemy import text

from domain.enums import ChannelKind, OperatorRole
from domain.staff_notifications import Mode
from infra.models import Base, Bitrix24Connection, Branch, CannedReply, Inbox, Label, RegionRule, StaffNotificationRule
from infra.security import CredentialBox
from services import webhooks
from services.api_tokens import create_token
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.telegram import TOKEN
from tests.integration.settings_support import Client, add_parked_row, add_staff, sign_in

EVERYONE = {
    "/settings",
    "/settings/profile",
    "/settings/profile/notifications",
    "/settings/profile/password",
    "/settings/profile/sessions/end-others",
}
SUPERVISORS = {
    "/settings/audit",
    "/settings/audit.csv",
    "/settings/health",
    "/settings/health.json",
    "/settings/health/outbox/{outbox_id}/retry",
}


def settings_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route under /settings."""
    from fastapi import FastAPI

    from web import settings as settings_pages

    # the app keeps its pages out of its schema; a bare app with the settings router lists them all
    probe = FastAPI()
    probe.include_router(settings_pages.router)
    found = [(method.upper(), path) for path, operations in probe.openapi()["paths"].items() for method in operations]
    assert len(found) > 40, found  # the pages are there (and in the schema this reads)
    return sorted(found)


def allowed(role: OperatorRole, path: str) -> bool:
    if path in EVERYONE:
        return True
    if path in SUPERVISORS:
        return role in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN)
    return role == OperatorRole.ADMIN


@dataclass
class World:
    ids: dict[str, int]
    clients: dict[OperatorRole, Client]

    def path(self, template: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: str(self.ids[m.group(1)]), template)


async def make_world(factory, base_url: str, admin: dict) -> World:
    box = CredentialBox(TEST_CREDENTIALS_KEY)
    async with factory() as db, db.begin():
        branch = Branch(name="Урал", timezone="Asia/Yekaterinburg")
        label = Label(name="VIP", colour="#d6453a")
        inbox = Inbox(
            name="Бот",
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=box.seal({"token": TOKEN, "webhook_secret": "secret-of-the-test"}),
            bot_username="switchboard_test_bot",
        )
        db.add_all([branch, label, inbox])
        await db.flush()
        reply = CannedReply(shortcut="hi", text="Hello")
        token = (await create_token(db, None, name="CRM", branch_ids=None, can_write=False)).token
        endpoint, _ = await webhooks.create_endpoint(
            db,
            box,
            webhooks.EndpointInput(name="CRM", url="https://crm.example/hooks", events=["message.created"]),
            operator_id=None,
        )
        rule = RegionRule(region="RU-SVE", branch_id=branch.id)
        portal = Bitrix24Connection(
            branch_id=branch.id,
            webhook_url_encrypted=box.seal({"webhook_url": "https://b24.example/rest/1/code/"}),
            responsible_id=1,
        )
        staff_rule = StaffNotificationRule(branch_id=branch.id, mode=Mode.EVERY, chat_id="-1001", bot_inbox_id=inbox.id)
        db.add_all([reply, rule, portal, staff_rule])
        await db.flush()
        ids = {
            "branch_id": branch.id,
            "label_id": label.id,
            "inbox_id": inbox.id,
            "reply_id": reply.id,
            "rule_id": rule.id,
            "token_id": token.id,
            "endpoint_id": endpoint.id,
            "connection_id": portal.id,
            "staff_rule_id": staff_rule.id,
        }
    ids["operator_id"] = await add_staff(factory, OperatorRole.OPERATOR, "target@example.com", "Цель")
    ids["outbox_id"], _ = await add_parked_row(factory)
    clients = {OperatorRole.ADMIN: await sign_in(base_url, admin["email"], admin["password"])}
    for role in (OperatorRole.OPERATOR, OperatorRole.SUPERVISOR):
        await add_staff(factory, role, f"{role.value}@example.com", role.value)
        clients[role] = await sign_in(base_url, f"{role.value}@example.com")
    return World(ids, clients)


async def tear_down(world: World, engine) -> None:
    for client in world.clients.values():
        await client.http.aclose()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))


async def request(client: Client, method: str, path: str, data=None, **kwargs) -> httpx.Response:
    if method == "GET":
        return await client.get(path, **kwargs)
    return await client.post(path, data or {}, **kwargs)


def no_server_error(path: str, status: int) -> bool:
    """Below 500; the health JSON answers 503 on purpose when something is red (for monitors)."""
    return status < 500 or (path == "/settings/health.json" and status == 503)
