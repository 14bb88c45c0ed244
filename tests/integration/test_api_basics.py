"""Health, readiness and signing in, over real HTTP against PostgreSQL and Temporal."""

import re

import httpx
from sqlalchemy import func, select

from api import create_app
from infra.models import AuditEvent, Branch, Inbox, Operator, WebSession
from setup.seed import seed
from tests.conftest import LiveServer


async def test_healthz_and_readyz(live_api):
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}


async def test_readyz_names_temporal_when_it_is_down(app_settings):
    from setup.devstack import free_port

    broken = app_settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    server = LiveServer(create_app(broken)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            ready = await http.get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 503
    assert set(ready.json()["failing"]) == {"temporal"}


async def test_readyz_names_postgres_when_it_is_down(app_settings):
    broken = app_settings.model_copy(
        update={"database_url": "postgresql+asyncpg://postgres@/nowhere?host=/nonexistent-socket-dir"}
    )
    server = LiveServer(create_app(broken)).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
            ready = await http.get("/readyz")
    finally:
        server.stop()
    assert ready.status_code == 503
    assert set(ready.json()["failing"]) == {"postgres"}


async def test_seed_is_idempotent(clean_db, app_settings):
    first = await seed(clean_db, app_settings)
    second = await seed(clean_db, app_settings)
    assert first.created and not second.created
    async with clean_db() as db:
        counts = [await db.scalar(select(func.count()).select_from(m)) for m in (Branch, Inbox, Operator)]
    assert counts == [1, 1, 1]


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def test_pages_redirect_to_login_and_api_gets_problem_json(live_api, admin):
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        page = await http.get("/", headers={"accept": "text/html"})
        api = await http.get("/")
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert api.status_code == 401
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["status"] == 401


async def test_sign_in_and_out(live_api, admin, clean_db):
    async with httpx.AsyncClient(base_url=live_api.url, headers={"accept": "text/html"}) as http:
        form = await http.get("/login")
        wrong = await http.post(
            "/login", data={"email": admin["email"], "password": "nope", "csrf_token": _csrf(form.text)}
        )
        assert wrong.status_code == 401 and "Неверный e-mail или пароль" in wrong.text  # Russian by default
        assert "sb_session" not in http.cookies

        no_csrf = await http.post("/login", data={"email": admin["email"], "password": admin["password"]})
        assert no_csrf.status_code == 400

        form = await http.get("/login")
        ok = await http.post(
            "/login",
            data={"email": admin["email"].upper(), "password": admin["password"], "csrf_token": _csrf(form.text)},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/"
        home = await http.get("/")
        assert home.status_code == 200 and "<title>Диалоги — Switchboard</title>" in home.text

        forged = await http.post("/logout", data={"csrf_token": "forged"})
        assert forged.status_code == 403 and "Форма устарела" in forged.text
        out = await http.post("/logout", data={"csrf_token": _csrf(home.text)})
        assert out.status_code == 303
        assert (await http.get("/")).status_code == 303  # session revoked server-side
    async with clean_db() as db:
        assert await db.scalar(select(func.count()).select_from(WebSession)) == 0
        actions = (await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert actions == ["operator.login_failed", "operator.login"]
