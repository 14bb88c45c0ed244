"""Role checks on every settings route, one test per route and role: operators and supervisors
get 403 on the admins' routes, operators on the audit log and health, everyone reaches their own
profile. Routes are found in the app, so a new one is checked as soon as it exists. Signed-out
requests go to the sign-in page; posts without the session's CSRF token are refused."""

import pytest

from domain.enums import OperatorRole
from tests.integration.settings_routes import (
    World,
    allowed,
    make_world,
    no_server_error,
    request,
    settings_routes,
    tear_down,
)

ROUTES = settings_routes()


@pytest.fixture(scope="module")
async def world(live_api, sessionmaker, engine, app_settings) -> World:
    from setup.seed import seed

    await seed(sessionmaker, app_settings)
    credentials = {"email": app_settings.admin_email, "password": app_settings.admin_password.get_secret_value()}
    made = await make_world(sessionmaker, live_api.url, credentials)
    yield made
    await tear_down(made, engine)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
@pytest.mark.parametrize("role", [OperatorRole.OPERATOR, OperatorRole.SUPERVISOR], ids=lambda r: r.value)
async def test_refused_or_served_by_role(world, role, method, path):
    """Operators and supervisors first: the admin's requests below change (and delete) things."""
    answer = await request(world.clients[role], method, world.path(path))
    assert no_server_error(path, answer.status_code), answer.text
    assert (answer.status_code == 403) == (not allowed(role, path)), (role, method, path, answer.status_code)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_served_to_admins(world, method, path):
    answer = await request(world.clients[OperatorRole.ADMIN], method, world.path(path))
    assert no_server_error(path, answer.status_code), answer.text
    assert answer.status_code != 403, (method, path)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_signed_out_requests_go_to_the_sign_in_page(world, live_api, method, path):
    import httpx

    async with httpx.AsyncClient(base_url=live_api.url, headers={"accept": "text/html"}) as http:
        answer = await (http.get(world.path(path)) if method == "GET" else http.post(world.path(path), data={"x": "1"}))
    assert (answer.status_code, answer.headers.get("location")) == (303, "/login")


@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if r[0] == "POST"], ids=lambda v: str(v))
async def test_a_post_without_the_csrf_token_is_refused(world, method, path):
    client = world.clients[OperatorRole.ADMIN]
    answer = await client.http.post(world.path(path), data={"name": "x"})
    assert answer.status_code == 403 and "Форма устарела" in answer.text
