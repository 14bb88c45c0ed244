"""Settings -> Labels over real HTTP: add, rename, recolour and delete, errors next to the field."""

from sqlalchemy import select

from domain.enums import OperatorRole
from infra.models import AuditEvent, Label
from tests.integration.settings_support import add_staff, sign_in


async def test_an_admin_adds_edits_and_deletes_labels(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post("/settings/labels", {"name": "Срочно", "colour": "#D6453A"})
    assert (answer.status_code, answer.headers["location"]) == (303, "/settings/labels")
    page = await client.get("/settings/labels")
    assert "Метка «Срочно» добавлена." in page.text  # the toast after the redirect
    assert 'value="Срочно"' in page.text and 'fill="#d6453a"' in page.text
    async with clean_db() as db:
        label = await db.scalar(select(Label))

    answer = await client.post(f"/settings/labels/{label.id}", {"name": "Очень срочно", "colour": "#2e9e4f"})
    assert answer.status_code == 303
    answer = await client.post(f"/settings/labels/{label.id}/delete")
    assert answer.status_code == 303
    async with clean_db() as db:
        assert await db.scalar(select(Label)) is None
        actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.action.like("label.%")))).all()
    assert actions == ["label.created", "label.updated", "label.deleted"]
    await client.http.aclose()


async def test_a_wrong_label_is_shown_again_with_the_reason_next_to_the_field(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    await client.post("/settings/labels", {"name": "VIP"})
    answer = await client.post("/settings/labels", {"name": "vip", "colour": "#000000"})
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.text and "Метка с таким названием уже есть." in answer.text
    assert 'value="vip"' in answer.text  # what was typed stays
    answer = await client.post("/settings/labels", {"name": "", "colour": "blue"})
    assert answer.status_code == 422
    assert "Заполните это поле." in answer.text and "Выберите цвет в виде #rrggbb." in answer.text
    await client.http.aclose()


async def test_operators_and_supervisors_get_no_label_settings(live_api, admin, clean_db):
    for role in (OperatorRole.OPERATOR, OperatorRole.SUPERVISOR):
        await add_staff(clean_db, role, f"{role.value}@example.com", role.value)
        client = await sign_in(live_api.url, f"{role.value}@example.com")
        assert (await client.get("/settings/labels")).status_code == 403
        assert (await client.post("/settings/labels", {"name": "x"})).status_code == 403
        await client.http.aclose()
    async with clean_db() as db:
        assert await db.scalar(select(Label)) is None
