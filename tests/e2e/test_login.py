"""Signing in to the cabinet in a real browser."""


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
