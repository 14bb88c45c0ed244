"""No settings route answers 500 to anything a browser or a script can send: every POST route
gets empty, huge, NUL-laden, negative, overflowing, repeated, markup and emoji values in every
field any settings form reads; every route gets ids it cannot hold; GET routes get junk queries.
An admin sends them (the role everything is open to), with the session's CSRF token."""

import pytest

from domain.enums import OperatorRole
from tests.integration.settings_routes import make_world, no_server_error, request, settings_routes, tear_down

ROUTES = settings_routes()
POSTS = [path for method, path in ROUTES if method == "POST"]
GETS = [path for method, path in ROUTES if method == "GET"]
FIELDS = [
    *("name", "colour", "branch_id", "shortcut", "text", "timezone", "is_default", "region", "mode", "holidays"),
    *("d0_start", "d0_end", "d6_start", "d6_end", "email", "display_name", "role", "languages", "delivery"),
    *("default_branch_id", "escalation_minutes", "offline_text", "auto_reply", "rating_mode"),
    *("attachment_max_mb", "attachment_max_count", "allowed_domains", "sse", "channel", "token", "sealed"),
    *("chat_id", "locale", "notify_mode", "notify_sound", "notify_when_focused", "current", "password", "repeat"),
]  # fmt: skip
VALUES = {
    "empty": "",
    "huge": "x" * 20_000,
    "nul": "a\x00b",
    "negative": "-1",
    "overflow": "9" * 30,
    "float": "1e309",
    "markup": "<script>alert(1)</script>\"'&",
    "emoji": "🙂" * 500,
    "spaces": "   ",
}
BAD_IDS = ["0", "-5", "99999999999999999999999", "abc", "1.5", "%00"]


@pytest.fixture(scope="module")
async def world(live_api, sessionmaker, engine, app_settings):
    from setup.seed import seed

    await seed(sessionmaker, app_settings)
    credentials = {"email": app_settings.admin_email, "password": app_settings.admin_password.get_secret_value()}
    made = await make_world(sessionmaker, live_api.url, credentials)
    yield made
    await tear_down(made, engine)


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("kind", list(VALUES))
async def test_junk_in_every_field_of_every_form(world, path, kind):
    fields = [(name, VALUES[kind]) for name in FIELDS]
    answer = await request(world.clients[OperatorRole.ADMIN], "POST", world.path(path), fields)
    assert no_server_error(path, answer.status_code), answer.text[:2000]


@pytest.mark.parametrize("path", POSTS)
async def test_fields_repeated_and_files_where_text_belongs(world, path):
    client = world.clients[OperatorRole.ADMIN]
    repeated = [(name, value) for name in FIELDS for value in ("1", "two", "")]
    answer = await client.post(world.path(path), repeated)
    assert no_server_error(path, answer.status_code), answer.text[:2000]
    files = {name: ("x.bin", b"\x00\xff" * 100, "application/octet-stream") for name in FIELDS[:10]}
    answer = await client.http.post(world.path(path), data={"csrf_token": client.csrf}, files=files)
    assert no_server_error(path, answer.status_code), answer.text[:2000]


@pytest.mark.parametrize("template", sorted({p for _, p in ROUTES if "{" in p}))
@pytest.mark.parametrize("bad", BAD_IDS)
async def test_ids_no_row_can_have(world, template, bad):
    client = world.clients[OperatorRole.ADMIN]
    path = template.split("{")[0] + bad + template.split("}", 1)[1]
    for method in ("GET", "POST"):
        answer = await request(client, method, path)
        assert answer.status_code in (404, 405, 422), (method, path, answer.status_code)


@pytest.mark.parametrize("path", GETS)
async def test_junk_queries(world, path):
    client = world.clients[OperatorRole.ADMIN]
    for kind, value in VALUES.items():
        names = ("actor", "action", "conversation", "since", "until", "before", "region", "ip")
        params = {name: value[:1000] for name in names}  # an address has room for a few KB
        answer = await client.get(world.path(path), params=params)
        assert no_server_error(path, answer.status_code), (kind, answer.text[:2000])
