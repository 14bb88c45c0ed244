"""The supervisor's day in a real browser, with the engine as it runs (outbox relay, workflows,
the fake Telegram), a supervisor and an operator in two browser contexts:

- the board counts a new customer live (the event stream), with the operator's load, and shows
  the operator's status change live;
- the supervisor opens the operator's conversation: read-only, audited as watched, and the
  operator still sees it unread; "Take over" makes it the supervisor's and it leaves the
  operator's list live; transferred to another branch, that branch's operator sees it arrive live;
- a reply the provider refused (the customer blocked the bot) lands on the dead-letter list;
  retried from there once the customer is back, the fake provider receives it exactly once;
- screenshots of the board and each list, light and dark, desktop and phone, and axe on each.
"""

from __future__ import annotations

import re

from playwright.async_api import expect
from sqlalchemy import func, select, update

from domain.enums import DeliveryStatus, OperatorRole, OperatorStatus
from infra.models import AuditEvent, Branch, ContactChat, Conversation, Message, Operator
from infra.security import hash_password
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import PASSWORD, PHONE
from tests.e2e.test_workspace import _inbox, _open_as, _writes
from tests.fakes.faults import Fault
from tests.integration.conftest import engine_stack, wait_until  # noqa: F401 - the engine fixture

PAGES = {
    "board": "/supervisor",
    "unassigned": "/supervisor/unassigned",
    "escalated": "/supervisor/escalated",
    "dead-letters": "/supervisor/dead-letters",
}


async def test_supervisor_watches_takes_over_and_retries_a_dead_letter(
    browser, live_api, staff, clean_db, engine_stack, fake_telegram, screenshot
):
    anna, boss = staff[OperatorRole.OPERATOR], staff[OperatorRole.SUPERVISOR]
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == anna.id).values(status=OperatorStatus.ONLINE))
        ural = Branch(name="Урал", timezone="Asia/Yekaterinburg")
        db.add(ural)
        await db.flush()
        carl = Operator(
            email="carl@example.com", display_name="Карл", password_hash=hash_password(PASSWORD),
            role=OperatorRole.OPERATOR, branch_id=ural.id, status=OperatorStatus.ONLINE,
        )  # fmt: skip
        db.add(carl)
        await db.flush()
        ural_id, carl_id = ural.id, carl.id
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    contexts = []
    try:
        context, ann_page = await _open_as(browser, live_api, anna.email)
        contexts.append(context)
        context, boss_page = await _open_as(browser, live_api, boss.email)
        contexts.append(context)
        context, carl_page = await _open_as(browser, live_api, "carl@example.com")
        contexts.append(context)

        # a customer writes: Anna (the only one online) has it, unread
        await _writes(live_api.url, shop, 6001, "Где мой заказ?", 1)
        rows = ann_page.locator("#rows li.row")
        await expect(rows).to_have_count(1, timeout=20_000)
        watched = int(await rows.first.get_attribute("data-id"))

        # the board: Anna's load, and a second customer counted live
        await boss_page.goto(f"{live_api.url}/supervisor")
        await boss_page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
        home = boss_page.locator(f'section[data-branch="{staff.branch_id}"]')
        await expect(home.locator('[data-count="open"]')).to_have_text("1")
        await expect(home.locator(f"#operator-{anna.id} [data-load]")).to_have_text("1")
        await _writes(live_api.url, shop, 6002, "Пришлите счёт, пожалуйста", 2)
        await expect(home.locator('[data-count="open"]')).to_have_text("2", timeout=20_000)
        await expect(home.locator(f"#operator-{anna.id} [data-load]")).to_have_text("2", timeout=20_000)
        # Anna says she is busy: the board shows it live
        await ann_page.locator("#status-switch summary").click()
        await ann_page.locator("#status-switch").get_by_role("button", name="Занят", exact=True).click()
        await expect(home.locator(f"#operator-{anna.id}")).to_have_attribute("data-status", "busy", timeout=20_000)
        await screenshot(boss_page, "board-light")
        await assert_accessible(boss_page)

        # the supervisor watches Anna's conversation: read-only, audited, still unread for her
        await boss_page.goto(f"{live_api.url}/conversations/{watched}?tab=all")
        await expect(boss_page.locator(".banner[role=status]")).to_be_visible()
        await expect(boss_page.locator("#composer")).to_have_count(0)
        await screenshot(boss_page, "watching-light")
        async with clean_db() as db:
            views = select(func.count()).where(
                AuditEvent.action == "conversation.watched", AuditEvent.conversation_id == watched
            )
            assert await db.scalar(views) == 1
        await ann_page.reload()
        await expect(ann_page.locator(f"#row-{watched}")).to_have_class(re.compile(r"\bis-unread\b"))

        # take over: it is the supervisor's, and it leaves Anna's list live
        await boss_page.get_by_role("button", name="Взять в работу").click()
        await expect(boss_page.locator(".banner[role=status]")).to_have_count(0, timeout=20_000)
        await expect(ann_page.locator(f"#row-{watched}")).to_have_count(0, timeout=20_000)
        async with clean_db() as db:
            assert (await db.get(Conversation, watched)).assignee_id == boss.id

        # now the supervisor's, it goes to the Ural branch: its operator sees it arrive live
        await boss_page.locator("#transfer-menu summary").click()
        await boss_page.locator("#transfer-menu select[name=to_branch]").select_option(str(ural_id))
        await boss_page.locator("#transfer-menu button[type=submit]").click()
        await expect(carl_page.locator(f"#row-{watched}")).to_have_count(1, timeout=30_000)
        async with clean_db() as db:
            moved = await db.get(Conversation, watched)
            assert (moved.branch_id, moved.assignee_id) == (ural_id, carl_id)

        # Anna answers the second customer, who blocked the bot: a dead letter
        fake_telegram.set_chat_fault("6002", Fault.BLOCKED)
        await ann_page.locator("#rows li.row a").first.click()
        await ann_page.wait_for_url(re.compile(r"/conversations/\d+"))
        await ann_page.locator("#composer-text").fill("Счёт отправлен на почту")
        await ann_page.locator("#composer-text").press("Enter")
        reply = ann_page.locator("#messages .message[data-direction=out]")
        await expect(reply).to_have_attribute("data-status", "failed", timeout=30_000)
        message_id = int(await reply.get_attribute("data-id"))
        assert fake_telegram.sent_messages("6002") == []

        # the customer unblocks the bot (Telegram sends /start); the supervisor retries the reply
        # from the list: delivered exactly once
        fake_telegram.set_chat_fault("6002", None)
        await _writes(live_api.url, shop, 6002, "/start", 3)

        async def reachable() -> bool:
            async with clean_db() as db:
                return all((await db.scalars(select(ContactChat.reachable).where(ContactChat.inbox_id == shop))).all())

        await wait_until(reachable)
        await boss_page.goto(f"{live_api.url}/supervisor/dead-letters")
        letter = boss_page.locator(f"#dead-{message_id}")
        await expect(letter).to_contain_text("blocked")
        await screenshot(boss_page, "dead-letters-light")
        await assert_accessible(boss_page)
        await letter.get_by_role("button", name=f"Повторить сообщение {message_id}").click()
        await expect(boss_page.locator(f"#dead-{message_id}")).to_have_count(0)
        await expect(reply).to_have_attribute("data-status", "sent", timeout=30_000)

        async def delivered() -> bool:
            async with clean_db() as db:
                return await db.scalar(select(Message.delivery_status).where(Message.id == message_id)) == (
                    DeliveryStatus.SENT
                )

        await wait_until(delivered)
        assert [m.text for m in fake_telegram.sent_messages("6002")] == ["Счёт отправлен на почту"]
    finally:
        for context in contexts:
            await context.close()


async def test_supervisor_pages_light_dark_phone_and_accessible(browser, live_api, staff, clean_db, screenshot):
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    await _writes(live_api.url, shop, 7001, "Здравствуйте! Есть ли доставка в Казань?", 1)
    boss = staff[OperatorRole.SUPERVISOR]
    for scheme, viewport in (("light", None), ("dark", None), ("dark", PHONE), ("light", PHONE)):
        kwargs = {"color_scheme": scheme} | ({"viewport": viewport} if viewport else {})
        context, page = await _open_as(browser, live_api, boss.email, **kwargs)
        try:
            for name, path in PAGES.items():
                await page.goto(f"{live_api.url}{path}")
                await expect(page.locator("h1")).to_be_visible()
                await screenshot(page, f"{name}-{scheme}{'-phone' if viewport else ''}")
                await assert_accessible(page)
                if viewport:
                    await _tabs_fit_evenly(page, viewport["width"])
        finally:
            await context.close()


async def test_the_pool_and_the_dead_letters_update_without_a_reload(
    browser, live_api, staff, clean_db, engine_stack, fake_telegram, screenshot
):
    anna = staff[OperatorRole.OPERATOR]
    shop = await _inbox(clean_db, "Магазин", escalation_minutes=60)
    contexts = []
    try:
        context, boss_page = await _open_as(browser, live_api, staff[OperatorRole.SUPERVISOR].email)
        contexts.append(context)
        context, ann_page = await _open_as(browser, live_api, anna.email)
        contexts.append(context)

        # nobody is online: a new customer waits in the pool, which shows them without a reload
        await boss_page.goto(f"{live_api.url}/supervisor/unassigned")
        await boss_page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
        await boss_page.evaluate("window.stayed = true")
        pool = boss_page.locator("#pool li.row")
        await expect(pool).to_have_count(0)
        await _writes(live_api.url, shop, 8001, "Здравствуйте, можно оформить возврат?", 1)
        await expect(pool).to_have_count(1, timeout=20_000)
        await expect(boss_page.locator("#pool .waited")).to_have_count(1)
        waiting = int(await pool.first.get_attribute("data-id"))
        # Anna comes online and takes it from the pool: it leaves the list, still without a reload
        await ann_page.locator("#status-switch summary").click()
        await ann_page.locator("#status-switch").get_by_role("button", name="В сети", exact=True).click()
        await expect(boss_page.locator(f"#row-{waiting}")).to_have_count(0, timeout=20_000)
        assert await boss_page.evaluate("window.stayed === true")

        # a reply the provider refuses lands on the dead-letter list while the supervisor looks at it
        await boss_page.goto(f"{live_api.url}/supervisor/dead-letters")
        await boss_page.wait_for_function("window.switchboardStream && window.switchboardStream.readyState === 1")
        await boss_page.evaluate("window.stayed = true")
        await expect(boss_page.locator("#dead-letters tbody tr")).to_have_count(0)
        fake_telegram.set_chat_fault("8001", Fault.BLOCKED)
        await ann_page.goto(f"{live_api.url}/conversations/{waiting}")
        await ann_page.locator("#composer-text").fill("Да, пришлите номер заказа")
        await ann_page.locator("#composer-text").press("Enter")
        reply = ann_page.locator("#messages .message[data-direction=out]")
        await expect(reply).to_have_attribute("data-status", "failed", timeout=30_000)
        message_id = int(await reply.get_attribute("data-id"))
        letter = boss_page.locator(f"#dead-{message_id}")
        await expect(letter).to_contain_text("blocked", timeout=20_000)
        await expect(boss_page.locator("#dead-letters tbody tr")).to_have_count(1)
        assert await boss_page.evaluate("window.stayed === true")
        await screenshot(boss_page, "dead-letter-arrived")
    finally:
        for context in contexts:
            await context.close()


async def _tabs_fit_evenly(page, width: int) -> None:
    """At phone width the tab row is an even grid: two cells a row of one width, each row's cells
    one height, nothing past the screen's edge."""
    boxes = [await tab.bounding_box() for tab in await page.locator(".supervisor .tabs a").all()]
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= width for box in boxes), boxes
    rows: dict[float, list[dict]] = {}
    for box in boxes:
        rows.setdefault(round(box["y"]), []).append(box)
    paired = [row for row in rows.values() if len(row) == 2]
    assert len(paired) == len(boxes) // 2, boxes
    assert max(b["width"] for row in paired for b in row) - min(b["width"] for row in paired for b in row) < 1
    assert all(abs(row[0]["height"] - row[1]["height"]) < 1 for row in paired), boxes
