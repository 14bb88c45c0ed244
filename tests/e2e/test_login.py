"""Signing in to the cabinet in a real browser: the page in both languages and themes, at
desktop and phone width, accessible; wrong passwords refused, repeated ones throttled; signing
out ends the session."""

import re

import pytest
from sqlalchemy import text

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE


async def test_operator_signs_in_sees_the_inbox_and_signs_out(browser, live_api, admin):
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(f"{live_api.url}/")
    assert page.url.endswith("/login")  # redirected: every page needs a session

    await page.fill("input[name=email]", admin["email"])
    await page.fill("input[name=password]", "wrong")
    await page.click("form.login-card button[type=submit]")
    assert await page.locator("[role=alert]").inner_text() == "Неверный e-mail или пароль."

    await page.fill("input[name=password]", admin["password"])
    await page.click("form.login-card button[type=submit]")
    await page.wait_for_url(f"{live_api.url}/")
    assert await page.locator("h1").inner_text() == "Диалоги"
    assert "Administrator" in await page.locator("header").inner_text()

    await page.get_by_role("button", name="Выйти").click()
    await page.wait_for_url(f"{live_api.url}/login")
    await page.goto(f"{live_api.url}/")
    assert page.url.endswith("/login")
    await context.close()


async def test_after_repeated_failures_the_page_says_how_long_to_wait(browser, live_api, admin, clean_db):
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(f"{live_api.url}/login")
    for _ in range(6):
        await page.fill("input[name=email]", admin["email"])
        await page.fill("input[name=password]", "wrong")
        await page.click("form.login-card button[type=submit]")
        assert await page.locator("[role=alert]").inner_text() == "Неверный e-mail или пароль."
    async with clean_db() as db, db.begin():  # the next try comes early: 30 s of the wait are left
        await db.execute(text("UPDATE login_throttles SET blocked_until = now() + interval '30 seconds'"))

    await page.fill("input[name=password]", admin["password"])
    await page.click("form.login-card button[type=submit]")
    alert = await page.locator("[role=alert]").inner_text()
    assert re.fullmatch(r"Слишком много неудачных попыток входа\. Попробуйте снова через (29|30) секунд\.", alert), (
        alert
    )
    assert page.url.endswith("/login")  # still signed out
    await context.close()


@pytest.mark.parametrize(
    ("browser_locale", "scheme", "viewport", "heading"),
    [
        ("ru-RU", "light", DESKTOP, "Вход в кабинет"),
        ("ru-RU", "dark", PHONE, "Вход в кабинет"),
        ("en-US", "dark", DESKTOP, "Sign in to the cabinet"),
        ("en-US", "light", PHONE, "Sign in to the cabinet"),
        ("de-DE", "light", DESKTOP, "Вход в кабинет"),  # a language we do not speak: Russian
    ],
    ids=["ru-light-desktop", "ru-dark-phone", "en-dark-desktop", "en-light-phone", "de-falls-back-to-ru"],
)
async def test_login_page_speaks_the_browsers_language_in_either_theme_at_any_width(
    browser, live_api, screenshot, browser_locale, scheme, viewport, heading
):
    context = await browser.new_context(locale=browser_locale, color_scheme=scheme, viewport=viewport)
    page = await context.new_page()
    await page.goto(f"{live_api.url}/login")
    assert await page.locator("h1").inner_text() == heading
    assert await page.get_attribute("html", "lang") == ("en" if browser_locale == "en-US" else "ru")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(17, 21, 28)") == (scheme == "dark"), background
    # nothing sticks out sideways at phone width
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await assert_accessible(page)
    await screenshot(page, "login")
    await context.close()


async def test_the_login_pages_language_switch_is_remembered(browser, live_api, screenshot):
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    await page.goto(f"{live_api.url}/login")
    await page.get_by_role("link", name="English").click()
    assert await page.locator("h1").inner_text() == "Sign in to the cabinet"
    await page.goto(f"{live_api.url}/login")  # the choice outlives the page
    assert await page.locator("h1").inner_text() == "Sign in to the cabinet"
    assert await page.get_by_role("link", name="English").get_attribute("aria-current") == "true"
    await screenshot(page, "en")
    await context.close()
