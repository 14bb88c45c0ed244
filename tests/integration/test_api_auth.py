"""REST API authentication over real HTTP: bearer tokens stored by digest, revocable, never a
cabinet session; tokens never open a page; budgets per token with 429 and Retry-After; every
refusal problem+json."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from sqlalchemy import select

from api import create_app
from infra.models import ApiToken, AuditEvent
from infra.security import token_digest
from services.api_tokens import revoke_token
from tests.conftest import LiveServer
from tests.integration.api_support import assert_problem, client, issue_token


async def test_a_token_authenticates_and_is_stored_only_by_digest(live_api, clean_db):
    secret = await issue_token(clean_db, name="CRM", can_write=False)
    assert re.fullmatch(r"sb_[A-Za-z0-9_-]{43}", secret)
    async with client(live_api.url, secret) as http:
        me = await http.get("/api/v1/token")
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "CRM" and me.json()["branch_ids"] is None and me.json()["can_write"] is False
    async with clean_db() as db:
        token = await db.scalar(select(ApiToken))
        audit = await db.scalar(select(AuditEvent.action))
    assert token.token_hash == token_digest(secret) and secret.encode() not in token.token_hash
    assert token.hint == secret[:7] and token.last_used_at is not None
    assert audit == "api_token.created"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer sb_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 5000],
)
async def test_no_valid_token_is_401_problem_json(live_api, clean_db, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    async with client(live_api.url) as http:
        response = await http.get("/api/v1/token", headers=headers)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_is_refused_at_once(live_api, clean_db):
    secret = await issue_token(clean_db)
    async with client(live_api.url, secret) as http:
        assert (await http.get("/api/v1/token")).status_code == 200
        async with clean_db() as db, db.begin():
            token_id = await db.scalar(select(ApiToken.id))
            await revoke_token(db, None, token_id)
        assert_problem(await http.get("/api/v1/token"), 401)


async def _signed_in(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    form = await http.get("/login", headers={"accept": "text/html"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    done = await http.post("/login", data={**admin, "csrf_token": csrf}, headers={"accept": "text/html"})
    assert done.status_code == 303


async def test_a_cabinet_session_does_not_open_the_api_and_a_token_does_not_open_a_page(live_api, clean_db, admin):
    secret = await issue_token(clean_db)
    async with client(live_api.url) as http:
        await _signed_in(http, admin)
        assert (await http.get("/", headers={"accept": "text/html"})).status_code == 200  # the session works
        assert_problem(await http.get("/api/v1/token"), 401)
    async with client(live_api.url, secret) as http:
        page = await http.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert_problem(await http.get("/"), 401)


async def test_unknown_paths_and_methods_are_problem_json(live_api, clean_db):
    secret = await issue_token(clean_db)
    async with client(live_api.url, secret) as http:
        assert_problem(await http.get("/api/v1/nothing-here"), 404)
        wrong_method = await http.delete("/api/v1/token")
        assert_problem(wrong_method, 405)
        assert wrong_method.headers["allow"] == "GET"


async def test_bodies_must_be_json_and_small(live_api, clean_db):
    secret = await issue_token(clean_db)
    async with client(live_api.url, secret) as http:
        assert_problem(
            await http.post("/api/v1/token", content=b"text=hi", headers={"content-type": "text/plain"}), 415
        )
        assert_problem(
            await http.post(
                "/api/v1/token", content=b"[" * (1024 * 1024 + 1), headers={"content-type": "application/json"}
            ),
            413,
        )


@pytest.fixture
def two_tight_replicas(app_settings):
    """Two api processes' apps on one database, whose tokens may make 3 requests at once and
    one every 5 s after that."""
    tight = app_settings.model_copy(update={"api_rate_per_second": 0.2, "api_rate_burst": 3})
    servers = [LiveServer(create_app(tight)).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def test_a_token_past_its_budget_gets_429_with_retry_after_on_every_replica(two_tight_replicas, clean_db):
    busy, quiet = await issue_token(clean_db, name="busy"), await issue_token(clean_db, name="quiet")
    one, other = two_tight_replicas
    async with client(one.url, busy) as a, client(other.url, busy) as b:
        answers = await asyncio.gather(*(http.get("/api/v1/token") for http in (a, b, a, b, a)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert assert_problem(refused, 429)["type"] == "urn:switchboard:problem:rate-limited"
    assert 1 <= int(refused.headers["retry-after"]) <= 5
    async with client(one.url, quiet) as http:
        assert (await http.get("/api/v1/token")).status_code == 200


async def test_a_stranger_guessing_tokens_is_told_to_wait(live_api, clean_db):
    async with client(live_api.url, "sb_guess") as http:
        answers = [(await http.get("/api/v1/token")).status_code for _ in range(40)]
    assert answers[:30] == [401] * 30
    assert answers[-1] == 429 and answers.count(429) >= 5


async def test_an_exhausted_connection_pool_is_503_with_retry_after_not_a_failure(app_settings):
    """Under overload a request can wait the pool's whole timeout for a database connection:
    the caller is told to retry (bench.api found these answered 500)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = create_app(app_settings)

    @app.get("/api/v1/probe-overload")
    async def overloaded() -> dict:
        raise PoolTimeout("QueuePool limit of size 20 overflow 10 reached")

    server = LiveServer(app).start()
    try:
        async with client(server.url) as http:
            answer = await http.get("/api/v1/probe-overload")
    finally:
        server.stop()
    assert assert_problem(answer, 503)["detail"] == "The service is overloaded: try again in a moment."
    assert answer.headers["retry-after"] == "1"
