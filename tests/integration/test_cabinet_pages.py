"""Cabinet pages over real HTTP: the header's switches, the page context's timezone, and errors
that are readable pages for a browser, toasts for HTMX and problem+json for the API."""

import json
import re

import httpx
from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import Request

from api import create_app
from domain.enums import OperatorStatus
from infra.models import AuditEvent, Branch, Operator, WebSession
from web.deps import page_context

HTML = {"accept": "text/html"}


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def _signed_in(http: httpx.AsyncClient, admin) -> str:
    form = await http.get("/login")
    answer = await http.post(
        "/login", data={"email": admin["email"], "password": admin["password"], "csrf_token": _csrf(form.text)}
    )
    assert answer.status_code == 303
    return _csrf((await http.get("/")).text)


async def test_status_by_htmx_answers_the_switch_and_a_toast(live_api, admin, clean_db):
    async with httpx.AsyncClient(base_url=live_api.url, headers=HTML) as http:
        csrf = await _signed_in(http, admin)
        answer = await http.post(
            "/me/status",
            data={"status": "away", "next": "/"},
            headers={"HX-Request": "true", "X-CSRF-Token": csrf, "HX-Current-URL": f"{live_api.url}/?tab=mine"},
        )
    assert answer.status_code == 200
    assert answer.text.startswith("<details") and 'id="status-switch"' in answer.text
    assert 'name="next" value="/?tab=mine"' in answer.text  # the page the browser shows
    assert json.loads(answer.headers["HX-Trigger"]) == {"toast": {"level": "success", "text": "Ваш статус: Отошёл"}}
    async with clean_db() as db:
        assert await db.scalar(select(Operator.status).where(Operator.email == admin["email"])) == OperatorStatus.AWAY
        assert "operator.status" in (await db.scalars(select(AuditEvent.action))).all()


async def test_plain_form_posts_go_back_only_to_our_own_pages(live_api, admin):
    async with httpx.AsyncClient(base_url=live_api.url, headers=HTML) as http:
        csrf = await _signed_in(http, admin)
        for target, expected in [("/?tab=all", "/?tab=all"), ("//evil.example/", "/"), ("https://evil.example/", "/")]:
            answer = await http.post("/me/theme", data={"theme": "dark", "next": target, "csrf_token": csrf})
            assert (answer.status_code, answer.headers["location"]) == (303, expected)
        assert http.cookies["sb_theme"] == "dark"


async def test_language_choice_is_stored_and_mirrored_for_the_sign_in_page(live_api, admin, clean_db):
    async with httpx.AsyncClient(base_url=live_api.url, headers=HTML) as http:
        csrf = await _signed_in(http, admin)
        await http.post("/me/locale", data={"locale": "en", "next": "/", "csrf_token": csrf})
        assert "<title>Conversations — Switchboard</title>" in (await http.get("/")).text
        assert http.cookies["sb_locale"] == "en"
    async with clean_db() as db:
        assert await db.scalar(select(Operator.locale).where(Operator.email == admin["email"])) == "en"


async def test_times_follow_the_operators_zone_else_the_branchs_else_utc(db):
    branch = Branch(name="Восток", timezone="Asia/Vladivostok")
    db.add(branch)
    await db.flush()
    operator = Operator(email="tz@example.com", display_name="TZ", password_hash="-", role="operator")
    db.add(operator)
    await db.flush()
    request = Request({"type": "http", "headers": [], "path": "/", "query_string": b""})
    request.state.web_session = WebSession(csrf_token="token")

    async def zone_of() -> str:
        return str((await page_context(request, db, operator)).formats.timezone)

    assert await zone_of() == "UTC"  # no branch, no choice
    operator.branch_id = branch.id
    assert await zone_of() == "Asia/Vladivostok"
    operator.timezone = "Europe/Kaliningrad"
    assert await zone_of() == "Europe/Kaliningrad"
    operator.timezone = "Nowhere/Unknown"  # a stale name falls back, never fails the page
    assert await zone_of() == "Asia/Vladivostok"


async def test_errors_are_pages_for_browsers_toasts_for_htmx_and_problems_for_the_api(live_api, admin):
    async with httpx.AsyncClient(base_url=live_api.url, headers=HTML) as http:
        csrf = await _signed_in(http, admin)
        missing = await http.get("/no/such/page")
        assert missing.status_code == 404 and '<h1 id="error-title">Страница не найдена</h1>' in missing.text
        english = await http.get("/no/such/page", headers={"accept-language": "en", "cookie": ""})
        assert "Page not found" in english.text

        expired = await http.post("/me/status", data={"status": "away", "csrf_token": "stale"})
        assert expired.status_code == 403 and "Форма устарела" in expired.text

        htmx_expired = await http.post("/me/status", data={"status": "away"}, headers={"HX-Request": "true"})
        assert htmx_expired.status_code == 403 and htmx_expired.headers["HX-Reswap"] == "none"
        assert json.loads(htmx_expired.headers["HX-Trigger"])["toast"]["level"] == "error"

        junk = await http.post("/me/status", data={"status": "sleeping", "csrf_token": csrf})
        assert junk.status_code == 422 and "Что-то введено неверно" in junk.text

    async with httpx.AsyncClient(base_url=live_api.url) as api:
        problem = await api.get("/no/such/page")
    assert problem.status_code == 404 and problem.headers["content-type"] == "application/problem+json"


async def test_an_unexpected_failure_is_a_500_page_or_toast_never_a_traceback(app_settings):
    app = create_app(app_settings)
    broken = APIRouter()

    @broken.get("/broken")
    async def fail() -> None:
        raise RuntimeError("secret internals")

    app.include_router(broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        page = await http.get("/broken", headers=HTML)
        htmx = await http.get("/broken", headers={"HX-Request": "true"})
        api = await http.get("/broken")
    assert page.status_code == 500 and "Что-то пошло не так" in page.text and "secret internals" not in page.text
    assert htmx.status_code == 500 and json.loads(htmx.headers["HX-Trigger"])["toast"]["level"] == "error"
    assert api.status_code == 500 and api.json()["status"] == 500
