"""A real headless Debian chromium driven by Playwright (never `playwright install`)."""

import os
from collections.abc import AsyncIterator

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"E2E SKIPPED: {CHROMIUM} missing (make test installs it via apt-get as root)")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        await instance.close()


@pytest.fixture
async def page(browser) -> AsyncIterator:
    context = await browser.new_context()
    page = await context.new_page()
    yield page
    await context.close()
