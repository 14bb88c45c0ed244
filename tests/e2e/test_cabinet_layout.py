"""The cabinet's base layout in a real browser: the home page after sign-in in both themes and at
phone width, the status switch, the language and theme switches, several staff at once, the
keyboard alone, without JavaScript, and a translated error page."""

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Operator
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import DESKTOP, PASSWORD, PHONE


async def _text(locator) -> str:
    """What the element says, as a screen reader reads it in one line (hidden labels included)."""
    return " ".join((await locator.text_content()).split())


async def _operator(clean_db, operator_id: int) -> Operator:
    async with clean_db() as db:
        return await db.scalar(select(Operator).where(Operator.id == operator_id))


@pytest.mark.parametrize(
    ("scheme", "viewport"),
    [("light", DESKTOP), ("dark", DESKTOP), ("light", PHONE), ("dark", PHONE)],
    ids=["light-desktop", "dark-desktop", "light-phone", "dark-phone"],
)
async def test_home_page_after_sign_in(sign_in, conversations, screenshot, scheme, viewport):
    page = await sign_in(OperatorRole.OPERATOR, color_scheme=scheme, viewport=viewport)
    assert await page.title() == "(1) Диалоги — Switchboard"  # the customer's message is unread
    assert await page.get_attribute("html", "lang") == "ru"
    nav = page.get_by_role("navigation", name="Разделы")
    assert await nav.get_by_role("link", name="Диалоги").get_attribute("aria-current") == "page"
    assert await _text(page.locator("#status-switch summary")) == "Ваш статус: Не в сети"
    assert "Анна" in await page.locator("header").inner_text()
    # the operator sees the conversation assigned to them, and the branch's pool in its tab
    assert await page.locator("#rows li.row").count() == 1
    assert await _text(page.locator("#tabs")) == "Мои 1 Ничьи 2"
    await page.get_by_role("link", name="Ничьи 2").click()
    await expect(page.locator("#rows li.row")).to_have_count(2)
    ages = await page.locator("#rows time").all_inner_texts()
    assert ages == ["3 ч", "вчера"], ages
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await assert_accessible(page)
    await screenshot(page, "home")


async def test_status_switch_changes_the_status_at_once_with_a_toast(sign_in, staff, clean_db, screenshot):
    page = await sign_in(OperatorRole.OPERATOR)
    switch = page.locator("#status-switch")
    await switch.locator("summary").click()
    await screenshot(page, "menu-open")
    await assert_accessible(page)
    await switch.get_by_role("button", name="Отошёл").click()

    toast = page.locator("#toasts .toast")
    await toast.wait_for()
    assert await toast.locator(".toast-text").inner_text() == "Ваш статус: Отошёл"
    assert await toast.get_attribute("data-level") == "success"
    await expect(page.locator("#status-switch summary")).to_contain_text("Отошёл")
    assert await _text(page.locator("#status-switch summary")) == "Ваш статус: Отошёл"
    assert (await _operator(clean_db, staff[OperatorRole.OPERATOR].id)).status == OperatorStatus.AWAY
    await screenshot(page, "toast")
    await assert_accessible(page)


async def test_status_switch_with_the_keyboard_alone(sign_in, staff, clean_db):
    page = await sign_in(OperatorRole.OPERATOR)
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Перейти к содержимому"
    summary = page.locator("#status-switch summary")
    for _ in range(10):  # through the skip link, the brand and the sections to the switch
        if await summary.evaluate("element => element === document.activeElement"):
            break
        await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")  # В сети
    await page.keyboard.press("Tab")  # Отошёл
    await page.keyboard.press("Tab")  # Занят
    await page.keyboard.press("Enter")
    await page.locator("#toasts .toast").wait_for()
    await expect(summary).to_be_focused()  # the swapped-in switch keeps the keyboard
    assert await _text(summary) == "Ваш статус: Занят"
    assert (await _operator(clean_db, staff[OperatorRole.OPERATOR].id)).status == OperatorStatus.BUSY


async def test_language_switch_turns_the_cabinet_english_and_is_remembered(
    sign_in, staff, clean_db, live_api, screenshot
):
    page = await sign_in(OperatorRole.SUPERVISOR)
    await page.locator(".account-menu summary").click()
    await page.get_by_role("button", name="English").click()
    await page.locator("html[lang=en]").wait_for(state="attached")
    assert await page.locator("h1").inner_text() == "Conversations"
    assert await _text(page.locator("#status-switch summary")) == "Your status: Offline"
    assert (await _operator(clean_db, staff[OperatorRole.SUPERVISOR].id)).locale == "en"
    await assert_accessible(page)
    await screenshot(page, "en")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{live_api.url}/login")
    assert await page.locator("h1").inner_text() == "Sign in to the cabinet"  # the sign-in page follows


async def test_theme_switch_overrides_the_device_and_is_kept_per_operator(sign_in, staff, clean_db, screenshot):
    page = await sign_in(OperatorRole.ADMIN, color_scheme="light")
    await page.locator(".account-menu summary").click()
    await page.get_by_role("button", name="Тёмная").click()
    await page.locator("html[data-theme=dark]").wait_for(state="attached")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(17, 21, 28)"
    assert (await _operator(clean_db, staff[OperatorRole.ADMIN].id)).theme == "dark"
    await assert_accessible(page)
    await screenshot(page, "dark-on-a-light-device")


async def test_operator_supervisor_and_admin_at_once_each_in_their_own_session(sign_in, staff):
    pages = {role: await sign_in(role) for role in OperatorRole}
    for role, page in pages.items():
        await page.reload()
        assert staff[role].name in await page.locator(".account-menu summary").inner_text()
    menu = pages[OperatorRole.ADMIN].locator(".account-menu")
    await menu.locator("summary").click()
    assert await menu.locator(".menu-note").inner_text() == "Администратор"


async def test_status_switch_works_without_javascript(browser, live_api, staff, clean_db, screenshot):
    context = await browser.new_context(java_script_enabled=False, locale="ru-RU")
    page = await context.new_page()
    member = staff[OperatorRole.OPERATOR]
    await page.goto(f"{live_api.url}/login")
    await page.fill("input[name=email]", member.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("form.login-card button[type=submit]")
    await page.wait_for_url(f"{live_api.url}/")

    await page.locator("#status-switch summary").click()  # <details> opens without a script
    await page.get_by_role("button", name="В сети", exact=True).click()
    await page.wait_for_url(f"{live_api.url}/")
    assert await page.locator("#toasts .toast-text").inner_text() == "Ваш статус: В сети"
    assert (await _operator(clean_db, member.id)).status == OperatorStatus.ONLINE
    await screenshot(page, "after-post")
    await page.reload()
    assert await page.locator("#toasts .toast").count() == 0  # shown once
    await context.close()


async def test_an_unknown_page_is_a_readable_error_in_the_layout(sign_in, live_api, screenshot):
    page = await sign_in(OperatorRole.OPERATOR, viewport=PHONE)
    response = await page.goto(f"{live_api.url}/no/such/page")
    assert response.status == 404
    assert await page.locator("h1").inner_text() == "Страница не найдена"
    await page.get_by_role("link", name="К диалогам").click()
    await page.wait_for_url(f"{live_api.url}/")
    await page.goto(f"{live_api.url}/no/such/page")
    await assert_accessible(page)
    await screenshot(page, "404")
