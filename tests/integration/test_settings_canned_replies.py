"""Settings -> Canned replies over real HTTP."""

from sqlalchemy import select

from infra.models import Branch, CannedReply
from tests.integration.settings_support import sign_in


async def test_an_admin_adds_a_branch_reply_edits_and_deletes_it(live_api, admin, clean_db):
    async with clean_db() as db:
        branch_id = await db.scalar(select(Branch.id).where(Branch.is_default))
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    page = await client.get("/settings/canned-replies")
    assert page.status_code == 200 and "{contact_name}" in page.text
    answer = await client.post(
        "/settings/canned-replies",
        {"branch_id": branch_id, "shortcut": "/привет", "text": "Здравствуйте, {contact_name}!"},
    )
    assert answer.status_code == 303
    async with clean_db() as db:
        reply = await db.scalar(select(CannedReply))
    assert (reply.branch_id, reply.shortcut) == (branch_id, "привет")
    page = await client.get(f"/settings/canned-replies/{reply.id}")
    assert page.status_code == 200 and "Здравствуйте, {contact_name}!" in page.text

    answer = await client.post(
        f"/settings/canned-replies/{reply.id}", {"branch_id": "", "shortcut": "привет", "text": "{oops}"}
    )
    assert answer.status_code == 422 and "Неизвестная переменная {oops}" in answer.text
    answer = await client.post(
        f"/settings/canned-replies/{reply.id}", {"branch_id": "", "shortcut": "hi", "text": "Hi"}
    )
    assert answer.status_code == 303
    async with clean_db() as db:
        reply = await db.scalar(select(CannedReply))
    assert (reply.branch_id, reply.shortcut, reply.text) == (None, "hi", "Hi")
    assert (await client.post(f"/settings/canned-replies/{reply.id}/delete")).status_code == 303
    assert (await client.get(f"/settings/canned-replies/{reply.id}")).status_code == 404
    await client.http.aclose()
