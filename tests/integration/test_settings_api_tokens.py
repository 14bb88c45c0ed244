"""Settings -> API tokens over real HTTP: only admins, CSRF on every form, the token shown once
(never stored, never in a redirect), scoped to branches, revoked at once."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from domain.enums import OperatorRole
from infra.models import ApiToken, Branch
from tests.integration.api_support import assert_problem, client
from tests.integration.realtime_support import staff

CSRF = "c"  # realtime_support.staff's sessions


async def test_an_admin_creates_a_token_sees_it_once_and_revokes_it(live_api, clean_db):
    async with clean_db() as db, db.begin():
        north = Branch(name="North")
        db.add(north)
        await db.flush()
        north_id = north.id
    _, cookie = await staff(clean_db, OperatorRole.ADMIN)
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}) as http:
        page = await http.get("/settings/api-tokens", headers={"accept": "text/html"})
        assert page.status_code == 200 and "North" in page.text
        created = await http.post(
            "/settings/api-tokens",
            data={"csrf_token": CSRF, "name": "CRM", "scope": "branches", "branch": [str(north_id)], "write": "true"},
        )
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        secret = re.search(r'id="issued-secret">(sb_[A-Za-z0-9_-]{43})<', created.text).group(1)
        again = await http.get("/settings/api-tokens")
        assert secret not in again.text and secret[:7] + "…" in again.text  # only its hint from now on

        async with client(live_api.url, secret) as api:
            me = (await api.get("/api/v1/token")).json()
            assert me["branch_ids"] == [north_id] and me["can_write"] is True

            refused = await http.post("/settings/api-tokens", data={"csrf_token": CSRF, "name": " ", "scope": "all"})
            assert refused.status_code == 422
            assert re.search(
                r'id="token-name"[^>]*aria-invalid="true".*id="token-name-error">'
                r"Дайте токену название длиной от 1 до 100 символов\.<",
                refused.text,
                re.S,
            )
            none_ticked = {"csrf_token": CSRF, "name": "Склад", "scope": "branches", "write": "true"}
            refused = await http.post("/settings/api-tokens", data=none_ticked)
            assert refused.status_code == 422 and "Выберите хотя бы один филиал или все филиалы." in refused.text
            assert 'value="Склад"' in refused.text  # what was typed stays
            assert re.search(r'id="token-scope-branches"[^>]*checked', refused.text)
            assert re.search(r'id="token-write"[^>]*checked', refused.text)

            revoked = await http.post(f"/settings/api-tokens/{me['id']}/revoke", data={"csrf_token": CSRF})
            assert revoked.status_code == 303 and revoked.headers["location"] == "/settings/api-tokens"
            assert_problem(await api.get("/api/v1/token"), 401)
    async with clean_db() as db:
        token = await db.scalar(select(ApiToken))
    assert token.revoked_at is not None and secret not in token.hint + token.name


async def test_only_admins_with_the_forms_token_may_manage_tokens(live_api, clean_db):
    _, supervisor = await staff(clean_db, OperatorRole.SUPERVISOR)
    _, admin = await staff(clean_db, OperatorRole.ADMIN)
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": supervisor}) as http:
        assert (await http.get("/settings/api-tokens", headers={"accept": "text/html"})).status_code == 403
        assert (await http.post("/settings/api-tokens", data={"csrf_token": CSRF, "name": "x"})).status_code == 403
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": admin}) as http:
        forged = await http.post("/settings/api-tokens", data={"csrf_token": "forged", "name": "x"})
        assert forged.status_code == 403
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        page = await http.get("/settings/api-tokens", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login"
    async with clean_db() as db:
        assert (await db.scalars(select(ApiToken))).all() == []
