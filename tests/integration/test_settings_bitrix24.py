"""Settings -> Bitrix24 over real HTTP: an admin connects a branch to a portal (the webhook URL,
a secret, kept encrypted and never shown back), replaces it, and disconnects it; a URL that is
not an inbound webhook is refused and keeps nothing; only admins, with CSRF."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select, update

from domain.enums import OperatorRole
from infra.models import AuditEvent, Bitrix24Connection, Branch, Operator
from infra.security import CredentialBox
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.realtime_support import staff as staff_in_russian

CSRF = "c"  # realtime_support.staff's sessions
HTML = {"accept": "text/html"}


async def staff(factory, role: OperatorRole) -> tuple[int, str]:
    """A signed-in member of staff who reads the cabinet in English."""
    operator_id, cookie = await staff_in_russian(factory, role)
    async with factory() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == operator_id).values(locale="en"))
    return operator_id, cookie


URL = "https://shop.bitrix24.ru/rest/17/s3cr3tc0de/"


async def test_an_admin_connects_replaces_and_disconnects_a_branchs_portal(clean_db, live_api):
    async with clean_db() as db, db.begin():
        branch = Branch(name="North")
        db.add(branch)
        await db.flush()
        owner = f"branch:{branch.id}"
    _, cookie = await staff(clean_db, OperatorRole.ADMIN)
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}, headers=HTML) as http:
        page = await http.get("/settings/bitrix24")
        assert page.status_code == 200 and "Branch “North”" in page.text

        form = {"csrf_token": CSRF, "owner": owner, "responsible_id": "5", "deadline_hours": "48"}
        refused = await http.post("/settings/bitrix24", data={**form, "webhook_url": "https://shop.bitrix24.ru/s3cr3t"})
        assert refused.status_code == 422 and "Paste the inbound webhook URL" in refused.text
        assert "s3cr3t" not in refused.text  # the secret is not echoed back

        connected = await http.post("/settings/bitrix24", data={**form, "webhook_url": URL})
        assert connected.status_code == 303
        listed = await http.get("/settings/bitrix24")
        assert "shop.bitrix24.ru" in listed.text and "s3cr3tc0de" not in listed.text and "48 hours" in listed.text

        replaced = await http.post("/settings/bitrix24", data={**form, "responsible_id": "9", "webhook_url": URL})
        assert replaced.status_code == 303
        async with clean_db() as db:
            connection = await db.scalar(select(Bitrix24Connection))
            assert await db.scalar(select(func.count()).select_from(Bitrix24Connection)) == 1
        assert connection.branch_id == branch.id and connection.responsible_id == 9
        assert CredentialBox(TEST_CREDENTIALS_KEY).open(connection.webhook_url_encrypted) == {"webhook_url": URL}
        assert b"s3cr3tc0de" not in connection.webhook_url_encrypted

        gone = await http.post(f"/settings/bitrix24/{connection.id}/delete", data={"csrf_token": CSRF})
        assert gone.status_code == 303
        assert (
            await http.post(f"/settings/bitrix24/{connection.id}/delete", data={"csrf_token": CSRF})
        ).status_code == 404
    async with clean_db() as db:
        assert await db.scalar(select(func.count()).select_from(Bitrix24Connection)) == 0
        actions = list((await db.scalars(select(AuditEvent.action).order_by(AuditEvent.id))).all())
    assert actions == ["bitrix24.connected", "bitrix24.connected", "bitrix24.disconnected"]


async def test_only_admins_with_the_forms_token_connect_bitrix24(clean_db, live_api):
    _, supervisor = await staff(clean_db, OperatorRole.SUPERVISOR)
    _, admin = await staff(clean_db, OperatorRole.ADMIN)
    async with clean_db() as db, db.begin():
        branch = Branch(name="North")
        db.add(branch)
        await db.flush()
    form = {"owner": f"branch:{branch.id}", "webhook_url": URL, "responsible_id": "5", "deadline_hours": "24"}
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": supervisor}, headers=HTML) as http:
        assert (await http.get("/settings/bitrix24")).status_code == 403
        assert (await http.post("/settings/bitrix24", data={**form, "csrf_token": CSRF})).status_code == 403
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": admin}, headers=HTML) as http:
        assert (await http.post("/settings/bitrix24", data={**form, "csrf_token": "forged"})).status_code == 403
    async with clean_db() as db:
        assert await db.scalar(select(func.count()).select_from(Bitrix24Connection)) == 0
