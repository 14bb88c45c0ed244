"""A live update puts a row where the list's own sort puts it, not always at the top: in "created"
a new message moves nothing, in "last activity" it brings the row up."""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import update

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Operator
from tests.e2e.test_workspace import _inbox, _open_as, _writes
from tests.integration.conftest import engine_stack  # noqa: F401 - the engine fixture


@pytest.mark.parametrize(("sort", "first_after"), [("created", "Клиент 6202"), ("activity", "Клиент 6201")])
async def test_a_live_row_takes_its_place_in_the_lists_sort(
    browser, live_api, staff, clean_db, engine_stack, fake_telegram, sort, first_after
):
    anna = staff[OperatorRole.OPERATOR]
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == anna.id).values(status=OperatorStatus.ONLINE))
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    context, page = await _open_as(browser, live_api, anna.email)
    try:
        rows = page.locator("#rows li.row")
        await _writes(live_api.url, shop, 6201, "Первый вопрос", 1)
        await expect(rows).to_have_count(1, timeout=20_000)
        await _writes(live_api.url, shop, 6202, "Второй вопрос", 2)
        await expect(rows).to_have_count(2, timeout=20_000)
        await page.goto(f"{live_api.url}/?sort={sort}")
        await page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
        await expect(rows.first).to_contain_text("Клиент 6202")  # both sorts: the newer one first

        await _writes(live_api.url, shop, 6201, "Есть новости?", 3)  # the older conversation
        await expect(page.locator("#rows li.row", has_text="Есть новости?")).to_have_count(1, timeout=20_000)
        await expect(rows).to_have_count(2)
        await expect(rows.first).to_contain_text(first_after)
        await page.reload()  # what the next load draws
        await expect(rows.first).to_contain_text(first_after)
    finally:
        await context.close()
