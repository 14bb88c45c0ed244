"""Snooze in a real browser with the engine as it runs (outbox relay, workflows, the fake
Telegram): an operator snoozes a conversation from its thread with the keyboard until the
customer writes; its row leaves Mine live; the customer writes through the Telegram webhook and
the row comes back live, with the chime."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect
from sqlalchemy import update

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Conversation, Operator
from tests.e2e.axe import assert_accessible
from tests.e2e.test_workspace import _inbox, _open_as, _writes
from tests.integration.conftest import engine_stack, wait_until  # noqa: F401 - the engine fixture


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_snoozed_until_the_customer_writes_leaves_mine_and_comes_back_live(
    browser, live_api, staff, clean_db, engine_stack, fake_telegram, screenshot, scheme
):
    anna = staff[OperatorRole.OPERATOR]
    async with clean_db() as db, db.begin():
        await db.execute(
            update(Operator)
            .where(Operator.id == anna.id)
            .values(status=OperatorStatus.ONLINE, notify_when_focused=True)
        )
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    context, page = await _open_as(browser, live_api, anna.email, color_scheme=scheme)
    try:
        await _writes(live_api.url, shop, 6001, "Когда будет возврат?", 1)
        rows = page.locator("#rows li.row")
        await expect(rows).to_have_count(1, timeout=20_000)
        await rows.first.locator("a").click()
        await page.wait_for_url(re.compile(r"/conversations/\d+"))
        conversation_id = int(page.url.rsplit("/", 1)[-1])
        await expect(page.locator("#composer-text")).to_be_visible()

        await page.locator("body").press("s")  # the shortcut opens the snooze menu
        menu = page.locator("#snooze-menu")
        await expect(menu).to_have_attribute("open", "")
        await screenshot(page, f"snooze-menu-{scheme}")
        await assert_accessible(page)
        await menu.get_by_role("button", name="До сообщения клиента").click()
        await expect(rows).to_have_count(0, timeout=10_000)  # out of Mine, live
        await expect(page.locator('[data-count="mine"]')).to_have_text("0")
        await expect(menu.locator("summary")).to_have_text("Отложен до сообщения клиента", timeout=10_000)
        async with clean_db() as db:
            conversation = await db.get(Conversation, conversation_id)
            assert conversation.snoozed_at is not None and conversation.snoozed_until is None
        await page.evaluate("delete document.getElementById('panes').dataset.lastSound")

        await _writes(live_api.url, shop, 6001, "Есть новости?", 2)
        await expect(rows).to_have_count(1, timeout=20_000)  # back, live
        await expect(rows.first).to_contain_text("Есть новости?")
        await expect(page.locator('[data-count="mine"]')).to_have_text("1")
        await page.wait_for_function("document.getElementById('panes').dataset.lastSound")
        async with clean_db() as db:
            assert (await db.get(Conversation, conversation_id)).snoozed_at is None
        await screenshot(page, f"woken-{scheme}")
    finally:
        await context.close()
