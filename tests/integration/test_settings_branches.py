"""Settings -> Branches over real HTTP: branches, their working hours with several intervals a
day and holidays, the default branch, region rules and the routing tester."""

from datetime import date

from sqlalchemy import select

from domain.schedule import WorkingHours
from infra.models import AuditEvent, Branch, RegionRule
from tests.integration.settings_support import sign_in


async def _branch(clean_db, name: str) -> Branch:
    async with clean_db() as db:
        return await db.scalar(select(Branch).where(Branch.name == name))


async def test_an_admin_adds_a_branch_and_sets_its_week_and_holidays(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.post("/settings/branches", {"name": "Урал", "timezone": "Asia/Yekaterinburg"})
    assert answer.status_code == 303
    ural = await _branch(clean_db, "Урал")
    assert answer.headers["location"] == f"/settings/branches/{ural.id}"
    assert (ural.working_hours, ural.is_default) == ({}, False)  # open around the clock until set

    page = await client.get(f"/settings/branches/{ural.id}")
    assert page.status_code == 200 and "Понедельник" in page.text and 'value="Asia/Yekaterinburg"' in page.text
    week = [
        ("mode", "weekly"),
        ("d0_start", "09:00"), ("d0_end", "13:00"),
        ("d0_start", "14:00"), ("d0_end", "18:00"),
        ("d0_start", ""), ("d0_end", ""),
        ("d5_start", "22:00"), ("d5_end", "00:00"),
        ("holidays", "2027-01-01\n2027-01-07"),
    ]  # fmt: skip
    answer = await client.post(f"/settings/branches/{ural.id}/hours", week)
    assert answer.status_code == 303, answer.text
    hours = WorkingHours.model_validate((await _branch(clean_db, "Урал")).working_hours)
    assert hours.timezone == "Asia/Yekaterinburg"
    assert hours.weekly == {0: [("09:00", "13:00"), ("14:00", "18:00")], 5: [("22:00", "24:00")]}
    assert hours.holidays == [date(2027, 1, 1), date(2027, 1, 7)]
    page = await client.get(f"/settings/branches/{ural.id}")
    assert 'value="14:00"' in page.text and "2027-01-07" in page.text

    # the timezone moves with the schedule
    answer = await client.post(f"/settings/branches/{ural.id}", {"name": "Урал", "timezone": "Asia/Omsk"})
    assert answer.status_code == 303
    assert (await _branch(clean_db, "Урал")).working_hours["timezone"] == "Asia/Omsk"
    async with clean_db() as db:
        changes = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "branch.working_hours"))).all()
    assert changes[0].details["before"] == {"working_hours": {}}
    assert changes[0].details["after"]["working_hours"]["weekly"]["0"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    await client.http.aclose()


async def test_a_wrong_week_says_what_is_wrong_beside_the_day_and_saves_nothing(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    branch = await _branch(clean_db, "Main branch")
    week = [
        ("mode", "weekly"),
        ("d1_start", "09:00"), ("d1_end", "13:00"),
        ("d1_start", "12:00"), ("d1_end", "15:00"),
        ("d2_start", "10:00"), ("d2_end", ""),
        ("d3_start", "18:00"), ("d3_end", "09:00"),
        ("holidays", "2027-13-01"),
    ]  # fmt: skip
    answer = await client.post(f"/settings/branches/{branch.id}/hours", week)
    assert answer.status_code == 422
    assert 'id="day-1-error">09:00-13:00 и 12:00-15:00 пересекаются.' in answer.text
    assert 'id="day-2-error">Укажите и начало, и конец.' in answer.text
    assert 'id="day-3-error">18:00-09:00 заканчивается раньше, чем начинается.' in answer.text
    assert "2027-13-01 — не дата в виде ГГГГ-ММ-ДД." in answer.text
    assert 'value="12:00"' in answer.text  # what was typed stays on the page
    assert (await _branch(clean_db, "Main branch")).working_hours == {}
    await client.http.aclose()


async def test_one_default_branch_at_a_time_and_it_cannot_be_deleted(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    main = await _branch(clean_db, "Main branch")
    await client.post("/settings/branches", {"name": "Волга", "timezone": "Europe/Samara", "is_default": "on"})
    assert not (await _branch(clean_db, "Main branch")).is_default and (await _branch(clean_db, "Волга")).is_default
    volga = await _branch(clean_db, "Волга")
    answer = await client.post(f"/settings/branches/{volga.id}", {"name": "Волга", "timezone": "Europe/Samara"})
    assert answer.status_code == 422 and "Один филиал всегда основной" in answer.text
    answer = await client.post(f"/settings/branches/{volga.id}/delete")
    assert answer.status_code == 422 and "Основной филиал нельзя удалить" in answer.text
    answer = await client.post(f"/settings/branches/{main.id}", {"name": "Волга", "timezone": "Narnia/Capital"})
    assert answer.status_code == 422
    assert "Филиал с таким названием уже есть." not in answer.text  # the timezone fails first
    assert "Неизвестный часовой пояс Narnia/Capital" in answer.text
    answer = await client.post(f"/settings/branches/{main.id}", {"name": "Волга", "timezone": "UTC"})
    assert answer.status_code == 422 and "Филиал с таким названием уже есть." in answer.text
    await client.http.aclose()


async def test_region_rules_and_the_tester(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    await client.post("/settings/branches", {"name": "Урал", "timezone": "Asia/Yekaterinburg"})
    ural = await _branch(clean_db, "Урал")
    assert (
        await client.post("/settings/branches/regions", {"region": "RU-SVE", "branch_id": ural.id})
    ).status_code == 303
    answer = await client.post("/settings/branches/regions", {"region": "ru-sve", "branch_id": ural.id})
    assert answer.status_code == 422 and "У этого региона уже есть правило" in answer.text

    page = await client.get("/settings/branches/regions", params={"region": "ru-sve"})
    assert "«ru-sve» уходит в филиал Урал по правилу для RU-SVE." in page.text
    page = await client.get("/settings/branches/regions", params={"region": "RU-MOW"})
    assert "«RU-MOW»: правила нет, диалог уходит в основной филиал Main branch." in page.text
    assert 'name="ip"' in page.text  # GeoIP (infra/geoip.py): an IP can be tried

    async with clean_db() as db:
        rule = await db.scalar(select(RegionRule))
    assert (await client.post(f"/settings/branches/regions/{rule.id}/delete")).status_code == 303
    async with clean_db() as db:
        assert await db.scalar(select(RegionRule)) is None
    await client.http.aclose()
