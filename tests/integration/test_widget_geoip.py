"""A widget visitor is routed by where their address is (DB-IP City Lite, offline), the address
taken from X-Forwarded-For only when a trusted proxy sends it; the region rules' tester takes an
IP through the same resolver."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from sqlalchemy import select

from domain.enums import OperatorRole
from infra.geoip import GeoIp
from infra.models import Contact, Conversation, Operator
from services import branches
from services.branches import BranchInput, RegionRuleInput
from tests.conftest import LiveServer
from tests.integration.conftest import wait_until
from tests.integration.settings_support import sign_in
from tests.integration.widget_support import Visitor, widget_inbox

MOSCOW_IP = "77.88.8.8"  # DB-IP City Lite (2023-04): Moscow, RU
CALIFORNIA_IP = "8.8.8.8"  # Mountain View, California, US


def test_the_database_names_regions_and_knows_nothing_of_private_addresses():
    geo = GeoIp()
    assert geo.region_for(MOSCOW_IP) == "Moscow"
    assert geo.region_for(CALIFORNIA_IP) == "California"
    for unknown in ("10.0.0.1", "127.0.0.1", "::1", "not an ip", ""):
        assert geo.region_for(unknown) is None


def _server(app_settings, *proxies: str) -> LiveServer:
    """The api trusting X-Forwarded-For from `proxies` only (uvicorn's own handling, which
    trusts loopback, off: the test's requests come from loopback)."""
    from api import create_app

    settings = app_settings.model_copy(update={"trusted_proxies": tuple(ip_network(p) for p in proxies)})
    server = LiveServer(create_app(settings))
    server._server.config.proxy_headers = False
    return server.start()


@pytest.fixture
def behind_proxy(app_settings):
    server = _server(app_settings, "127.0.0.1/32")
    yield server
    server.stop()


@pytest.fixture
def exposed(app_settings):
    server = _server(app_settings)
    yield server
    server.stop()


async def _branch_of(factory, conversation_id: int) -> int | None:
    async with factory() as db:
        return await db.scalar(select(Conversation.branch_id).where(Conversation.id == conversation_id))


async def test_a_visitor_from_moscow_goes_to_the_moscow_branch(clean_db, engine_stack, behind_proxy, exposed):
    async with clean_db() as db, db.begin():
        admin = Operator(email="geo@example.com", display_name="Geo", password_hash="-", role=OperatorRole.ADMIN)
        db.add(admin)
        await db.flush()
        home = await branches.create_branch(db, admin, BranchInput(name="Главный", timezone="UTC"))
        moscow = await branches.create_branch(db, admin, BranchInput(name="Москва", timezone="Europe/Moscow"))
        await branches.add_rule(db, admin, RegionRuleInput(region="Moscow", branch_id=moscow.id))
        home_id, moscow_id = home.id, moscow.id
    inbox_id = await widget_inbox(clean_db)

    async def conversation_of(server, forwarded: str) -> int:
        visitor = Visitor(server.url, inbox_id, headers={"x-forwarded-for": forwarded})
        assert (await visitor.start()).status_code == 201
        assert (await visitor.say("hello")).status_code == 201
        return (await visitor.chat())["conversation"]["id"]

    from_moscow = await conversation_of(behind_proxy, MOSCOW_IP)
    from_california = await conversation_of(behind_proxy, CALIFORNIA_IP)
    # without a trusted proxy the header is anyone's word: ignored (the peer is loopback, no region)
    claimed = await conversation_of(exposed, MOSCOW_IP)
    for conversation_id in (from_moscow, from_california, claimed):
        await wait_until(lambda c=conversation_id: _branch_of(clean_db, c))
    assert await _branch_of(clean_db, from_moscow) == moscow_id
    assert await _branch_of(clean_db, from_california) == home_id
    assert await _branch_of(clean_db, claimed) == home_id
    async with clean_db() as db:
        regions = set((await db.scalars(select(Contact.region))).all())
    assert regions == {"Moscow", "California", None}


async def test_the_region_tester_takes_an_ip(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db, db.begin():
        operator = await db.scalar(select(Operator).where(Operator.email == admin["email"]))
        moscow = await branches.create_branch(db, operator, BranchInput(name="Москва-филиал", timezone="Europe/Moscow"))
        await branches.add_rule(db, operator, RegionRuleInput(region="Moscow", branch_id=moscow.id))
    page = await client.get("/settings/branches/regions", params={"ip": MOSCOW_IP})
    assert page.status_code == 200 and "Москва-филиал" in page.text
    await client.http.aclose()
