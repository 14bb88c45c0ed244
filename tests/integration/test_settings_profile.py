"""Settings -> My profile, for every role: name, language, timezone, notifications, password,
sessions and "sign out everywhere else"."""

import pytest
from sqlalchemy import select

from domain.enums import OperatorRole
from infra.models import AuditEvent, Operator
from tests.integration.settings_support import PASSWORD, add_staff, sign_in


@pytest.mark.parametrize("role", list(OperatorRole))
async def test_everyone_edits_their_own_profile_and_notifications(live_api, admin, clean_db, role):
    operator_id = await add_staff(clean_db, role, "me@example.com", "Я")
    client = await sign_in(live_api.url, "me@example.com")
    page = await client.get("/settings/profile")
    assert page.status_code == 200 and "me@example.com" in page.text
    answer = await client.post(
        "/settings/profile", {"display_name": "Анна К.", "locale": "en", "timezone": "Asia/Yekaterinburg"}
    )
    assert answer.status_code == 303 and client.http.cookies["sb_locale"] == "en"
    assert "Your profile is saved." in (await client.get("/settings/profile")).text
    answer = await client.post("/settings/profile/notifications", {"notify_mode": "all", "notify_when_focused": "on"})
    assert answer.status_code == 303
    async with clean_db() as db:
        me = await db.get(Operator, operator_id)
        changes = (await db.scalars(select(AuditEvent).where(AuditEvent.actor_operator_id == operator_id))).all()
    assert (me.display_name, me.locale, me.timezone) == ("Анна К.", "en", "Asia/Yekaterinburg")
    assert (me.notify_mode, me.notify_sound, me.notify_when_focused) == ("all", False, True)
    notified = next(c for c in changes if c.action == "operator.notifications")
    assert notified.details["before"] == {"notify_mode": "mine", "notify_sound": True, "notify_when_focused": False}
    await client.http.aclose()


async def test_bad_profile_input_is_shown_next_to_the_field(live_api, admin, clean_db):
    await add_staff(clean_db, OperatorRole.OPERATOR, "me@example.com", "Я")
    client = await sign_in(live_api.url, "me@example.com")
    answer = await client.post("/settings/profile", {"display_name": "", "locale": "fr", "timezone": "Mars/Olympus"})
    assert answer.status_code == 422
    for message in ("Заполните это поле.", "Выберите один из вариантов.", "Неизвестный часовой пояс Mars/Olympus"):
        assert message in answer.text
    answer = await client.post("/settings/profile/notifications", {"notify_mode": "loud"})
    assert answer.status_code == 422 and "Выберите один из вариантов." in answer.text
    await client.http.aclose()


async def test_a_password_change_needs_the_current_one_and_signs_out_elsewhere(live_api, admin, clean_db):
    await add_staff(clean_db, OperatorRole.OPERATOR, "me@example.com", "Я")
    phone = await sign_in(live_api.url, "me@example.com")
    laptop = await sign_in(live_api.url, "me@example.com")
    page = await laptop.get("/settings/profile")
    assert page.text.count("python-httpx") == 2 and "Этот сеанс" in page.text
    wrong = await laptop.post(
        "/settings/profile/password", {"current": "nope", "password": "new-password-1", "repeat": "new-password-1"}
    )
    assert (
        wrong.status_code == 422 and "Это не ваш текущий пароль." in wrong.text and "new-password-1" not in wrong.text
    )
    answer = await laptop.post(
        "/settings/profile/password", {"current": PASSWORD, "password": "new-password-1", "repeat": "new-password-1"}
    )
    assert answer.status_code == 303
    assert (await laptop.get("/settings/profile")).status_code == 200
    assert (await phone.get("/settings/profile")).status_code == 303  # signed out
    again = await sign_in(live_api.url, "me@example.com", "new-password-1")
    assert (await laptop.post("/settings/profile/sessions/end-others")).status_code == 303
    assert (await again.get("/settings/profile")).status_code == 303
    for client in (phone, laptop, again):
        await client.http.aclose()
