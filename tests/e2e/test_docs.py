"""The API docs pages work without internet: every asset comes from us."""

from urllib.parse import urlsplit

import pytest

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
async def offline_page(page):
    """The page with every request to a non-loopback host refused; the refused URLs are listed."""
    page.blocked = []

    async def only_loopback(route):
        if urlsplit(route.request.url).hostname in LOOPBACK:
            await route.continue_()
        else:
            page.blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_loopback)
    return page


async def test_swagger_ui_renders_offline(offline_page, live_api):
    page = offline_page
    await page.goto(f"{live_api.url}/docs")
    operation = page.locator(".opblock-summary-path", has_text="/healthz").first
    await operation.wait_for(state="visible", timeout=15_000)
    assert await page.locator(".opblock").count() >= 3
    assert page.blocked == []


async def test_redoc_renders_offline(offline_page, live_api):
    page = offline_page
    await page.goto(f"{live_api.url}/redoc")
    await page.locator("h1", has_text="Switchboard").wait_for(state="visible", timeout=15_000)
    await page.get_by_role("menuitem", name="health", exact=True).click()  # the app's JavaScript answers
    await page.get_by_role("menuitem", name="Healthz", exact=True).wait_for(state="visible")
    assert page.blocked == []
