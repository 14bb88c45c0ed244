"""The one render helper: whole page, or a block and out-of-band blocks for HTMX; the page
context's navigation; toasts as HX-Trigger events or as a signed one-time cookie."""

import json

import pytest
from fastapi import FastAPI
from fastapi.responses import Response
from jinja2 import ChoiceLoader, DictLoader
from starlette.requests import Request

from domain.enums import Locale, OperatorRole, OperatorStatus
from infra.models import Operator
from web import templating
from web.i18n import Formats
from web.templating import NavCounts, PageContext, render
from web.toasts import FLASH_COOKIE, Toast, ToastLevel, read_flash, toast

PAGE = """{% extends "base.html" %}
{% block content %}<ul id="rows">{% block rows %}<li>{{ _("Open") }}</li>{% endblock %}</ul>{% endblock %}
{% block badge %}{% include "partials/_unread_badge.html" %}{% endblock %}"""


@pytest.fixture(autouse=True)
def test_page():
    loader = templating.env.loader
    templating.env.loader = ChoiceLoader([DictLoader({"test/page.html": PAGE}), loader])
    yield
    templating.env.loader = loader


def _app(*route_names: str) -> FastAPI:
    app = FastAPI()
    for name in route_names:
        app.add_api_route(f"/{name}", lambda: None, name=name)
    app.state.settings = type("Settings", (), {"cookie_secure": False})()
    return app


def _request(app: FastAPI | None = None, path: str = "/home", **headers: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
        "app": app or _app("home"),
        "scheme": "http",
        "server": ("testserver", 80),
    }
    return Request(scope)


def _operator(role=OperatorRole.OPERATOR) -> Operator:
    return Operator(id=7, display_name="Анна", role=role, status=OperatorStatus.ONLINE, locale="ru", theme="auto")


def _page(request: Request, *, operator=None, locale=Locale.RU, unread=None) -> PageContext:
    return PageContext(
        request, Formats(locale), operator=operator, csrf_token="secret", counts=NavCounts(unread=unread)
    )


def test_a_normal_request_gets_the_whole_page_with_its_security_headers():
    response = render(_page(_request(), operator=_operator()), "test/page.html")
    html = response.body.decode()
    assert html.startswith("<!doctype html>") and '<html lang="ru"' in html and "<li>Открыт</li>" in html
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "HX-Request" in response.headers["vary"]


def test_an_htmx_request_gets_the_block_then_the_out_of_band_blocks():
    request = _request(HX_Request="true")
    response = render(_page(request, operator=_operator(), unread=3), "test/page.html", block="rows", oob=["badge"])
    html = response.body.decode()
    assert html.startswith("<li>Открыт</li>")
    assert 'id="nav-unread"' in html and 'hx-swap-oob="true"' in html and "3 непрочитанных" in html
    assert "<html" not in html


@pytest.mark.parametrize("header", ["HX_Boosted", "HX_History_Restore_Request"])
def test_boosted_navigation_and_history_restores_get_the_whole_page(header):
    request = _request(HX_Request="true", **{header: "true"})
    html = render(_page(request, operator=_operator()), "test/page.html", block="rows").body.decode()
    assert html.startswith("<!doctype html>")


def test_the_whole_page_has_the_badge_in_place_not_out_of_band():
    html = render(_page(_request(), operator=_operator(), unread=2), "test/page.html").body.decode()
    assert 'id="nav-unread"' in html and "hx-swap-oob" not in html


def test_english_page():
    html = render(_page(_request(), operator=_operator(), locale=Locale.EN), "test/page.html").body.decode()
    assert '<html lang="en"' in html and "<li>Open</li>" in html and "Skip to content" in html


@pytest.mark.parametrize(
    ("role", "sections"),
    [
        (OperatorRole.OPERATOR, ["Conversations"]),
        # supervisors read the audit log and the health page under Settings
        (OperatorRole.SUPERVISOR, ["Conversations", "Supervisor", "Settings"]),
        (OperatorRole.ADMIN, ["Conversations", "Supervisor", "Settings"]),
    ],
)
def test_navigation_shows_each_role_its_sections_once_their_routes_exist(role, sections):
    request = _request(_app("home", "supervisor", "settings"), path="/supervisor")
    links = _page(request, operator=_operator(role)).nav()
    assert [link.label for link in links] == sections
    assert [link.href for link in links if link.current] == (["/supervisor"] if role != OperatorRole.OPERATOR else [])


def test_a_section_stays_current_on_its_sub_pages():
    links = _page(
        _request(_app("home", "settings"), path="/settings/labels"), operator=_operator(OperatorRole.ADMIN)
    ).nav()
    assert [(link.label, link.current) for link in links] == [("Conversations", False), ("Settings", True)]


def test_navigation_leaves_out_sections_that_are_not_built():
    links = _page(_request(_app("home")), operator=_operator(OperatorRole.ADMIN)).nav()
    assert [link.label for link in links] == ["Conversations"]


def test_a_toast_for_htmx_is_an_ascii_hx_trigger_event():
    response = Response()
    response.headers["HX-Trigger"] = json.dumps({"other": 1})
    toast(_request(HX_Request="true"), response, Toast(ToastLevel.SUCCESS, "Ваш статус: Отошёл"), secret="s")
    header = response.headers["HX-Trigger"]
    assert header.isascii()
    assert json.loads(header) == {"other": 1, "toast": {"level": "success", "text": "Ваш статус: Отошёл"}}


def test_a_toast_without_htmx_is_a_signed_cookie_shown_once():
    response = Response()
    toast(_request(), response, Toast(ToastLevel.SUCCESS, "Ваш статус: В сети"), secret="session-secret")
    cookie = response.headers["set-cookie"].split(";")[0].split("=", 1)[1].strip('"')
    following = _request(cookie=f"{FLASH_COOKIE}={cookie}")
    assert read_flash(following, secret="session-secret") == Toast(ToastLevel.SUCCESS, "Ваш статус: В сети")
    assert read_flash(following, secret="another-session") is None  # nobody else's words
    forged = cookie.split(".")[0] + ".00"
    assert read_flash(_request(cookie=f"{FLASH_COOKIE}={forged}"), secret="session-secret") is None

    page = _page(following, operator=_operator())
    shown = render(
        PageContext(**{**page.__dict__, "flash": read_flash(following, secret="session-secret")}), "test/page.html"
    )
    assert "Ваш статус: В сети" in shown.body.decode()
    assert f"{FLASH_COOKIE}=" in shown.headers["set-cookie"] and "Max-Age=0" in shown.headers["set-cookie"]
