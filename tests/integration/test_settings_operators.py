"""Settings -> Operators over real HTTP: invitations by a one-time link (copied, or e-mailed
through a real SMTP server on loopback) or an initial password shown once, accepting the link,
links expiring (3 days, a reset 1 day) and working once, role changes and the rules that keep an
admin, password resets ending sessions."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from domain.enums import OperatorRole
from infra.models import AuditEvent, Operator, PasswordLink, WebSession
from infra.security import token_digest, verify_password
from services import accounts
from setup.devstack import free_port
from tests.conftest import LiveServer
from tests.integration.settings_support import HTML, PASSWORD, add_staff, csrf_of, sign_in

INVITE = {"display_name": "Анна", "email": "anna@example.com", "role": "operator", "languages": ["ru", "en"]}


def _link(html: str) -> str:
    return re.search(r'id="handover-secret">([^<]+)<', html).group(1)


async def _accept(base_url: str, link: str, password: str, repeat: str | None = None) -> httpx.Response:
    path = link.split("://", 1)[1].split("/", 1)[1]
    async with httpx.AsyncClient(base_url=base_url, headers=HTML) as http:
        page = await http.get(f"/{path}")
        if page.status_code != 200:
            return page
        answer = await http.post(
            f"/{path}", data={"password": password, "repeat": repeat or password, "csrf_token": csrf_of(page.text)}
        )
        if answer.status_code == 303:
            home = await http.get("/")
            assert home.status_code == 200 and "Анна" in home.text
        return answer


async def test_an_invited_operator_opens_the_link_sets_a_password_and_is_signed_in(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post("/settings/operators/invite", {**INVITE, "delivery": "link"})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    link = _link(answer.text)
    assert link.startswith("http://localhost:8000/invite/")  # PUBLIC_URL
    assert "Скопируйте её и отправьте на anna@example.com" in answer.text  # no SMTP here: said so

    page = await httpx.AsyncClient(base_url=live_api.url).get("/invite/" + link.rsplit("/", 1)[1])
    assert page.status_code == 200 and "Добро пожаловать, Анна!" in page.text
    refused = await _accept(live_api.url, link, "short")
    assert refused.status_code == 422 and "Не меньше 8 символов." in refused.text
    refused = await _accept(live_api.url, link, "a-good-password", "another-password")
    assert refused.status_code == 422 and "Пароли не совпадают." in refused.text
    assert (await _accept(live_api.url, link, "a-good-password")).status_code == 303
    again = await _accept(live_api.url, link, "another-password")
    assert again.status_code == 410 and "Ссылка больше не работает" in again.text

    async with clean_db() as db:
        anna = await db.scalar(select(Operator).where(Operator.email == "anna@example.com"))
        actions = (await db.scalars(select(AuditEvent).where(AuditEvent.action.like("operator.%")))).all()
    assert (anna.role, anna.languages) == (OperatorRole.OPERATOR, ["ru", "en"])
    invited = next(e for e in actions if e.action == "operator.invited")
    assert invited.details["after"]["email"] == "anna@example.com"
    assert "operator.password_set" in [e.action for e in actions]
    assert link.rsplit("/", 1)[1] not in str([e.details for e in actions])  # the token is never kept
    anna_client = await sign_in(live_api.url, "anna@example.com", "a-good-password")
    assert (await anna_client.get("/settings/operators")).status_code == 403
    await anna_client.http.aclose()
    await client.http.aclose()


async def test_an_initial_password_is_shown_once_and_works(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post("/settings/operators/invite", {**INVITE, "delivery": "password"})
    password = _link(answer.text)
    assert len(password) >= 12
    anna = await sign_in(live_api.url, "anna@example.com", password)
    assert (await anna.get("/settings/profile")).status_code == 200
    async with clean_db() as db:
        details = (await db.scalars(select(AuditEvent.details).where(AuditEvent.action == "operator.invited"))).all()
    assert password not in str(details)
    taken = await client.post("/settings/operators/invite", {**INVITE, "email": "ANNA@example.com"})
    assert taken.status_code == 422 and "Этот адрес уже занят." in taken.text
    await anna.http.aclose()
    await client.http.aclose()


@pytest.fixture
def smtp_server():
    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, received
    controller.stop()


async def test_with_smtp_settings_the_link_is_e_mailed_too(app_settings, admin, clean_db, smtp_server):
    controller, received = smtp_server
    settings = app_settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": controller.server.sockets[0].getsockname()[1],
            "smtp_security": "none",
        }
    )
    from api import create_app

    server = await asyncio.to_thread(LiveServer(create_app(settings)).start)
    try:
        client = await sign_in(server.url, admin["email"], admin["password"])
        answer = await client.post("/settings/operators/invite", {**INVITE, "delivery": "link"})
        assert "Мы отправили её на anna@example.com." in answer.text
        link = _link(answer.text)
        (envelope,) = received
        assert envelope.rcpt_tos == ["anna@example.com"]
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert mail["Subject"] == "Ваша учётная запись Switchboard"
        assert link in mail.get_content()
        await client.http.aclose()
    finally:
        await asyncio.to_thread(server.stop)


async def test_roles_change_but_an_admin_always_remains(live_api, admin, clean_db):
    anna_id = await add_staff(clean_db, OperatorRole.OPERATOR, "anna@example.com", "Анна")
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    async with clean_db() as db:
        admin_id = await db.scalar(select(Operator.id).where(Operator.email == admin["email"]))
        branch_id = (await db.get(Operator, anna_id)).branch_id
    edit = {**INVITE, "role": "supervisor", "languages": ["kk"], "branch_id": branch_id}
    assert (await client.post(f"/settings/operators/{anna_id}", edit)).status_code == 303
    own = {"display_name": "Administrator", "email": admin["email"], "role": "operator"}
    refused = await client.post(f"/settings/operators/{admin_id}", own)
    assert refused.status_code == 422 and "Свою роль изменить нельзя." in refused.text
    refused = await client.post(f"/settings/operators/{admin_id}/deactivate")
    assert refused.status_code == 422 and "Нельзя отключить самого себя." in refused.text
    async with clean_db() as db:
        anna = await db.get(Operator, anna_id)
        change = await db.scalar(select(AuditEvent).where(AuditEvent.action == "operator.updated"))
    assert (anna.role, anna.languages) == (OperatorRole.SUPERVISOR, ["kk"])
    assert change.details["before"] == {"role": "operator", "languages": []}
    assert change.details["after"] == {"role": "supervisor", "languages": ["kk"]}
    await client.http.aclose()


async def test_a_password_reset_ends_the_operators_sessions_and_the_new_link_works(live_api, admin, clean_db):
    anna_id = await add_staff(clean_db, OperatorRole.OPERATOR, "anna@example.com", "Анна")
    anna = await sign_in(live_api.url, "anna@example.com", PASSWORD)
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post(f"/settings/operators/{anna_id}/reset", {"delivery": "link"})
    assert answer.status_code == 200
    signed_out = await anna.get("/settings/profile")
    assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/login")
    assert (await _accept(live_api.url, _link(answer.text), "brand-new-password")).status_code == 303
    async with clean_db() as db:
        assert (
            await db.scalar(select(func.count()).select_from(PasswordLink).where(PasswordLink.used_at.is_(None))) == 0
        )
        assert (
            await db.scalar(select(func.count()).select_from(WebSession).where(WebSession.operator_id == anna_id)) == 1
        )
    await anna.http.aclose()
    await client.http.aclose()


async def _age_link(factory, link: str, by: timedelta) -> None:
    """As if the link had been issued `by` earlier (its expiry moved back by as much)."""
    digest = token_digest(link.rsplit("/", 1)[1])
    async with factory() as db, db.begin():
        await db.execute(
            update(PasswordLink)
            .where(PasswordLink.token_hash == digest)
            .values(expires_at=PasswordLink.expires_at - by)
        )


@pytest.mark.parametrize(
    ("purpose", "valid"), [("invitation", timedelta(days=3)), ("reset", timedelta(days=1))], ids=["invitation", "reset"]
)
async def test_links_work_until_they_expire_and_only_once(live_api, admin, clean_db, purpose, valid):
    """An invitation works for 3 days, a reset link for 1 day, each once; an expired link changes
    no password, on opening or on posting the form."""
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    before = datetime.now(UTC)
    if purpose == "invitation":
        answer = await client.post("/settings/operators/invite", {**INVITE, "delivery": "link"})
    else:
        anna_id = await add_staff(clean_db, OperatorRole.OPERATOR, "anna@example.com", "Анна")
        answer = await client.post(f"/settings/operators/{anna_id}/reset", {"delivery": "link"})
    after = datetime.now(UTC)
    stale = _link(answer.text)
    async with clean_db() as db:
        link = await db.scalar(select(PasswordLink).where(PasswordLink.used_at.is_(None)))
    assert before + valid <= link.expires_at <= after + valid

    # a minute short of its lifetime it still opens; at its lifetime it no longer does
    await _age_link(clean_db, stale, valid - timedelta(minutes=1))
    path = _path(stale)
    async with httpx.AsyncClient(base_url=live_api.url, headers=HTML) as http:
        form = await http.get(path)  # the form, opened in time ...
        assert form.status_code == 200
        await _age_link(clean_db, stale, timedelta(minutes=1))
        assert (await http.get(path)).status_code == 410
        posted = {"password": "too-late-pass", "repeat": "too-late-pass", "csrf_token": csrf_of(form.text)}
        late = await http.post(path, data=posted)
        assert late.status_code == 410 and "Ссылка больше не работает" in late.text  # ... posted too late
    async with clean_db() as db:
        anna = await db.scalar(select(Operator).where(Operator.email == "anna@example.com"))
    if purpose == "invitation":
        assert accounts.is_pending(anna)
    else:
        assert verify_password(anna.password_hash, PASSWORD)

    # a new link (Reset sends a pending operator a new invitation) works once
    answer = await client.post(f"/settings/operators/{anna.id}/reset", {"delivery": "link"})
    fresh = _link(answer.text)
    assert (await _accept(live_api.url, fresh, "a-good-password")).status_code == 303
    again = await _accept(live_api.url, fresh, "another-password")
    assert again.status_code == 410 and "Ссылка больше не работает" in again.text
    signed_in = await sign_in(live_api.url, "anna@example.com", "a-good-password")  # the first password stays
    await signed_in.http.aclose()
    await client.http.aclose()


def _path(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]
