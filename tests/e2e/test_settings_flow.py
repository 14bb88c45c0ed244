"""An admin runs Switchboard from the browser (issue: admin settings): connects a Telegram bot
(the fake Telegram on loopback answers getMe and takes the webhook) and later a MAX bot (the fake
MAX answers GET /me and takes the subscription), gives the first an offline text,
sets working hours that close the branch now, adds a region rule and asks the tester, and a
customer's message through the Telegram webhook is answered with the offline text by the real
conversation and delivery workflows, which the health page then shows healthy; then invites an
operator who opens the link, sets a password and goes online; a supervisor is refused the
settings pages."""

import asyncio
from datetime import UTC, datetime

import httpx
from playwright.async_api import expect
from sqlalchemy import select

from domain.enums import OperatorRole, OperatorStatus
from domain.schedule import WorkingHours
from infra.models import Branch, Inbox, Operator
from services import health
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import PASSWORD
from tests.fakes.max import TOKEN as MAX_TOKEN
from tests.fakes.telegram import TOKEN
from tests.integration.conftest import engine_stack  # noqa: F401 - the worker and the outbox relay
from tests.integration.settings_support import https_api  # noqa: F401 - the app behind an https PUBLIC_URL

OFFLINE = "Мы сейчас закрыты и ответим завтра с 9:00."
CUSTOMER_CHAT = 50505


async def _login(browser, base_url: str, email: str, password: str, **context):
    ctx = await browser.new_context(locale="ru-RU", **context)
    page = await ctx.new_page()
    await page.goto(f"{base_url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("form.login-card button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    return page


async def _toast(page) -> str:
    toast = page.locator("#toasts .toast-text").last
    await toast.wait_for()
    return await toast.inner_text()


async def test_an_admin_sets_up_a_bot_closed_hours_and_an_operator_in_the_browser(
    browser, https_api, staff, engine_stack, fake_telegram, fake_max, clean_db, screenshot
):
    url = https_api.url
    admin = await _login(browser, url, staff[OperatorRole.ADMIN].email, PASSWORD)

    # connect the bot: the token is checked with Telegram and the bot named before it is kept
    await admin.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки").click()
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Источники").click()
    await admin.get_by_role("link", name="Подключить бота").click()
    await admin.get_by_label("Telegram").check()
    await admin.get_by_label("Название источника", exact=True).fill("Магазин")
    await admin.get_by_label("Токен", exact=True).fill(TOKEN)
    await admin.get_by_role("button", name="Проверить токен").click()
    await expect(admin.locator("#bot-name")).to_have_text("Switchboard")
    assert "@switchboard_test_bot" in await admin.locator(".facts").inner_text()
    await screenshot(admin, "1-bot-checked")
    await admin.get_by_role("button", name="Подключить", exact=True).click()
    assert await _toast(admin) == "Источник «Магазин» подключён."
    async with clean_db() as db:
        inbox = await db.scalar(select(Inbox).where(Inbox.name == "Магазин"))
    assert fake_telegram.webhook["url"] == f"https://switchboard.test/webhooks/telegram/{inbox.id}"
    assert TOKEN not in await admin.content()

    # its offline text
    await admin.get_by_label("Текст вне рабочего времени", exact=True).fill(OFFLINE)
    await admin.locator(f"form[action='/settings/inboxes/{inbox.id}'] button[type=submit]").click()
    assert await _toast(admin) == "Настройки источника «Магазин» сохранены."
    await screenshot(admin, "2-inbox")

    # the branch closes by its working hours: today one hour, far from now, in its own timezone
    # (UTC for the seeded branch); the other days stay closed
    now = datetime.now(UTC)
    opens, closes = ("20:00", "21:00") if now.hour < 12 else ("02:00", "03:00")
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Филиалы").click()
    await admin.get_by_role("link", name="Main branch").click()
    await admin.get_by_label("По недельному расписанию ниже").check()
    await admin.locator(f"#d{now.weekday()}-s1").fill(opens)
    await admin.locator(f"#d{now.weekday()}-e1").fill(closes)
    await admin.get_by_role("button", name="Сохранить рабочие часы").click()
    assert await _toast(admin) == "Рабочие часы филиала «Main branch» сохранены."
    await expect(admin.locator(".page-head")).to_contain_text("Сейчас закрыт")
    async with clean_db() as db:
        branch = await db.scalar(select(Branch).where(Branch.is_default))
    hours = WorkingHours.model_validate(branch.working_hours)
    assert (hours.always_open, hours.holidays) == (False, [])  # closed by the hours alone
    assert hours.weekly == {now.weekday(): [(opens, closes)]}
    await assert_accessible(admin)
    await screenshot(admin, "3-branch-closed")

    # a region rule, and the tester's answer for it and for a region without one
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Филиалы").click()
    await admin.get_by_role("link", name="Правила по регионам").click()
    await admin.get_by_label("Регион", exact=True).last.fill("RU-SVE")
    await admin.locator("form[action='/settings/branches/regions'][method=post] button[type=submit]").click()
    assert await _toast(admin) == "Правило для RU-SVE добавлено."
    await admin.locator("#test-region").fill("ru-sve")
    await admin.get_by_role("button", name="Узнать").click()
    await expect(admin.locator(".test-answer")).to_have_text(
        "«ru-sve» уходит в филиал Main branch по правилу для RU-SVE."
    )
    await admin.locator("#test-region").fill("RU-MOW")
    await admin.get_by_role("button", name="Узнать").click()
    await expect(admin.locator(".test-answer")).to_have_text(
        "«RU-MOW»: правила нет, диалог уходит в основной филиал Main branch."
    )
    await screenshot(admin, "3b-region-rules")

    # a customer writes: Telegram posts the update to the webhook with the secret it was given
    update = fake_telegram.inject_message(CUSTOMER_CHAT, "Здравствуйте, заказ готов?", first_name="Ирина")
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{url}/webhooks/telegram/{inbox.id}",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": fake_telegram.webhook["secret_token"]},
        )
    assert answer.status_code == 200
    for _ in range(600):  # the workflows answer within seconds; give up after a minute
        if [m.text for m in fake_telegram.sent_messages(CUSTOMER_CHAT)]:
            break
        await asyncio.sleep(0.1)
    assert [m.text for m in fake_telegram.sent_messages(CUSTOMER_CHAT)] == [OFFLINE]

    # the health page: the parts are up, the relay has drained the outbox, the bot is on its webhook;
    # with the stamp worker.py makes beside the engine (engine_stack runs no heartbeat)
    await health.beat(clean_db, worker="e2e:1", task_queue="switchboard", started_at=datetime.now(UTC))
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Состояние системы").click()
    for check in ("postgres", "temporal", "outbox_oldest", "outbox_parked", "dead_letters"):
        await expect(admin.locator(f"#check-{check} .state")).to_have_text("В порядке")
    # the new bot's webhook is not checked yet (the check runs every 10 minutes): Check now
    row = admin.locator(f"#inbox-{inbox.id}")
    await expect(row).to_contain_text("Вебхук")
    await expect(row.locator(".state")).to_have_text("Внимание")
    await row.get_by_role("link", name="Магазин").click()
    await admin.get_by_role("button", name="Проверить сейчас").click()
    assert await _toast(admin) == "Всё в порядке: провайдер ошибок не сообщает."
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Состояние системы").click()
    await expect(row).to_contain_text("Вебхук · проверено")
    await expect(row.locator(".state")).to_have_text("В порядке")
    await expect(admin.locator("#check-worker .state")).to_have_text("В порядке")
    await expect(admin.locator("#overall")).to_have_text("В целом: В порядке")
    await screenshot(admin, "3c-health")

    # a MAX bot too: checked with GET /me, subscribed to its webhook with a secret
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Источники").click()
    await admin.get_by_role("link", name="Подключить бота").click()
    await admin.get_by_label("MAX", exact=True).check()
    await admin.get_by_label("Название источника", exact=True).fill("Магазин в MAX")
    await admin.get_by_label("Токен", exact=True).fill(MAX_TOKEN)
    await admin.get_by_role("button", name="Проверить токен").click()
    await expect(admin.locator("#bot-name")).to_have_text("Switchboard")
    assert "@switchboard_bot" in await admin.locator(".facts").inner_text()
    await admin.get_by_role("button", name="Подключить", exact=True).click()
    assert await _toast(admin) == "Источник «Магазин в MAX» подключён."
    async with clean_db() as db:
        max_inbox = await db.scalar(select(Inbox).where(Inbox.name == "Магазин в MAX"))
    [subscription] = fake_max.subscriptions
    assert subscription["url"] == f"https://switchboard.test/webhooks/max/{max_inbox.id}" and subscription["secret"]
    assert MAX_TOKEN not in await admin.content()
    await screenshot(admin, "3d-max-connected")

    # invite an operator; they open the link, choose a password and go online
    await admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Сотрудники").click()
    await admin.get_by_label("Имя", exact=True).fill("Глеб")
    await admin.get_by_label("Эл. почта", exact=True).fill("gleb@example.com")
    await admin.get_by_label("Русский", exact=True).check()
    await admin.get_by_role("button", name="Пригласить").click()
    link = (await admin.locator("#handover-secret").inner_text()).strip()
    await screenshot(admin, "4-invitation-link")

    ctx = await browser.new_context(locale="ru-RU")
    gleb = await ctx.new_page()
    await gleb.goto(link.replace("https://switchboard.test", url))
    await expect(gleb.locator("h1")).to_have_text("Добро пожаловать, Глеб!")
    await gleb.get_by_label("Пароль", exact=True).fill("gleb-password-1")
    await gleb.get_by_label("Тот же пароль ещё раз").fill("gleb-password-1")
    await screenshot(gleb, "5-invitation-accepted")
    await gleb.get_by_role("button", name="Задать пароль и войти").click()
    await gleb.wait_for_url(f"{url}/")
    await gleb.locator("#status-switch summary").click()
    await gleb.locator("#status-switch").get_by_role("button", name="В сети", exact=True).click()
    assert await _toast(gleb) == "Ваш статус: В сети"
    async with clean_db() as db:
        joined = await db.scalar(select(Operator).where(Operator.email == "gleb@example.com"))
        branch = await db.scalar(select(Branch).where(Branch.is_default))
    assert (joined.status, joined.branch_id, joined.languages) == (OperatorStatus.ONLINE, branch.id, ["ru"])
    await ctx.close()

    # a supervisor is refused the admins' settings pages
    supervisor = await _login(browser, url, staff[OperatorRole.SUPERVISOR].email, PASSWORD)
    for path in ("/settings/branches", "/settings/inboxes", "/settings/operators"):
        response = await supervisor.goto(url + path)
        assert response.status == 403 and await supervisor.locator("h1").inner_text() == "Нет доступа"
    await screenshot(supervisor, "6-supervisor-refused")
    for page in (admin, supervisor):
        await page.context.close()
