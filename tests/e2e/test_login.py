"""Signing in to the cabinet in a real browser."""

import re

from sqlalchemy import text


async def test_operator_signs_in_sees_the_inbox_and_signs_out(page, live_api, admin):
    await page.goto(f"{live_api.url}/")
    assert page.url.endswith("/login")  # redirected: every page needs a session

    await page.fill("input[name=email]", admin["email"])
    await page.fill("input[name=password]", "wrong")
    await page.click("button[type=submit]")
    assert await page.locator("[role=alert]").inner_text() == "Wrong e-mail or password."

    await page.fill("input[name=password]", admin["password"])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{live_api.url}/")
    assert await page.locator("h1").inner_text() == "Conversations"
    assert "Administrator" in await page.locator("header").inner_text()

    await page.click("text=Sign out")
    await page.wait_for_url(f"{live_api.url}/login")
    await page.goto(f"{live_api.url}/")
    assert page.url.endswith("/login")


async def test_after_repeated_failures_the_page_says_how_long_to_wait(page, live_api, admin, clean_db):
    await page.goto(f"{live_api.url}/login")
    for _ in range(6):
        await page.fill("input[name=email]", admin["email"])
        await page.fill("input[name=password]", "wrong")
        await page.click("button[type=submit]")
        assert await page.locator("[role=alert]").inner_text() == "Wrong e-mail or password."
    async with clean_db() as db, db.begin():  # the next try comes early: 30 s of the wait are left
        await db.execute(text("UPDATE login_throttles SET blocked_until = now() + interval '30 seconds'"))

    await page.fill("input[name=password]", admin["password"])
    await page.click("button[type=submit]")
    alert = await page.locator("[role=alert]").inner_text()
    assert re.fullmatch(r"Too many failed sign-ins\. Try again in (29|30) seconds\.", alert), alert
    assert page.url.endswith("/login")  # still signed out
