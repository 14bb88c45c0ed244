"""Every settings page in a real browser, light and dark at desktop width and at phone width:
axe-core finds no serious or critical violation, nothing overflows sideways, and each is saved as
a screenshot (.pytest-tmp/artifacts/screenshots/test_every_settings_page_*). Pages that follow a
post (the bot's confirmation, an invitation's link, a form with errors, the invitation page) are
reached by filling the forms, as an admin would. A form is filled and sent with the keyboard alone,
its focus visible at every stop."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, SenderKind
from infra.models import (
    ApiToken,
    Contact,
    ContactChat,
    ContactIdentity,
    Conversation,
    Inbox,
    Label,
    Message,
    Operator,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from infra.security import CredentialBox
from services import accounts, api_tokens, audit, branches, canned_replies, health, labels
from services.accounts import InviteInput
from services.branches import BranchInput, HoursInput, RegionRuleInput
from services.canned_replies import CannedReplyInput
from services.labels import LabelInput
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import DESKTOP, PHONE
from tests.fakes.telegram import TOKEN

VARIANTS = {"light": ("light", DESKTOP), "dark": ("dark", DESKTOP), "phone": ("light", PHONE)}


@pytest.fixture
async def furnished(staff, clean_db, fake_telegram) -> dict[str, int]:
    """What a running installation has: two branches with hours and rules, staff in every state,
    a Telegram inbox whose webhook failed and the website chat, canned replies, labels, a trail,
    API tokens (one revoked), a parked outbox row and outgoing webhooks (one paused)."""
    box = CredentialBox(TEST_CREDENTIALS_KEY)
    async with clean_db() as db, db.begin():
        admin = await db.get(Operator, staff[OperatorRole.ADMIN].id)
        ural = await branches.create_branch(db, admin, BranchInput(name="Урал", timezone="Asia/Yekaterinburg"))
        week = {day: [("09:00", "13:00"), ("14:00", "18:00")] for day in range(5)} | {5: [("10:00", "16:00")]}
        await branches.set_working_hours(db, admin, ural.id, HoursInput(weekly=week, holidays=["2027-01-01"]))
        await branches.add_rule(db, admin, RegionRuleInput(region="RU-SVE", branch_id=ural.id))
        await branches.add_rule(db, admin, RegionRuleInput(region="RU-CHE", branch_id=ural.id))
        for name, colour in (("VIP", "#d6453a"), ("Доставка", "#1d5cbf"), ("Жалоба", "#8a5800")):
            await labels.create_label(db, admin, LabelInput(name=name, colour=colour))
        await canned_replies.create(
            db, admin, CannedReplyInput(shortcut="привет", text="Здравствуйте, {contact_name}!")
        )
        await canned_replies.create(
            db, admin, CannedReplyInput(branch_id=ural.id, shortcut="доставка", text="Доставка по Уралу — **2 дня**.")
        )
        invited = await accounts.invite(
            db, admin, InviteInput(email="gleb@example.com", display_name="Глеб", branch_id=ural.id, languages=["ru"])
        )
        gone = await accounts.invite(
            db, admin, InviteInput(email="dina@example.com", display_name="Дина", delivery="password")
        )
        await accounts.deactivate(db, admin, gone.operator.id)
        bot = Inbox(
            name="Магазин",
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=box.seal({"token": TOKEN, "webhook_secret": "s3cret"}),
            bot_name="Switchboard",
            bot_username="switchboard_test_bot",
            webhook_url="https://switchboard.example/webhooks/telegram/1",
            webhook_error="Wrong response from the webhook: 502 Bad Gateway",
            webhook_checked_at=datetime.now(UTC) - timedelta(minutes=4),
        )
        contact = Contact(display_name="Ирина")
        db.add_all([bot, contact])
        await db.flush()
        identity = ContactIdentity(contact_id=contact.id, channel=ChannelKind.TELEGRAM, provider_user_id="9")
        db.add(identity)
        await db.flush()
        db.add(ContactChat(identity_id=identity.id, inbox_id=bot.id, provider_chat_id="9"))
        await db.flush()
        conversation = Conversation(inbox_id=bot.id, contact_id=contact.id, identity_id=identity.id, branch_id=ural.id)
        db.add(conversation)
        await db.flush()
        db.add(
            Message(
                conversation_id=conversation.id, inbox_id=bot.id, direction=MessageDirection.OUT,
                sender_kind=SenderKind.OPERATOR, delivery_status=DeliveryStatus.FAILED, text="Ваш заказ готов",
            )
        )  # fmt: skip
        audit.record(
            db, "conversation.viewed", operator_id=staff[OperatorRole.SUPERVISOR].id, conversation_id=conversation.id
        )
        await api_tokens.create_token(db, admin, name="CRM", branch_ids=None, can_write=False)
        scoped = await api_tokens.create_token(db, admin, name="Склад Урала", branch_ids=[ural.id], can_write=True)
        scoped.token.last_used_at = datetime.now(UTC) - timedelta(minutes=7)
        revoked = await api_tokens.create_token(db, admin, name="Старый бот", branch_ids=None, can_write=True)
        await api_tokens.revoke_token(db, admin, revoked.token.id)
        db.add(
            OutboxEvent(
                conversation_id=conversation.id, kind="notice", attempts=10, refusals=10,
                last_error="Workflow type ConversationWorkflow not registered", parked_at=datetime.now(UTC),
            )
        )  # fmt: skip
        paused = WebhookEndpoint(
            name="Zapier", url="https://hooks.zapier.com/hooks/catch/1/abc/", events=["message.created"],
            secrets_encrypted=b"", paused_at=datetime.now(UTC), pause_reason="failing since yesterday: HTTP 500",
            failing_since=datetime.now(UTC) - timedelta(days=1), last_error="HTTP 500 Internal Server Error",
        )  # fmt: skip
        crm = WebhookEndpoint(name="CRM", url="https://crm.example.com/hook", events=[], secrets_encrypted=b"")
        db.add_all([paused, crm])
        await db.flush()
        event = {"event_type": "message.created", "order_key": conversation.id, "payload": {}}
        db.add(WebhookDelivery(endpoint_id=paused.id, event_id=1, status="dead", **event))
        db.add(WebhookDelivery(endpoint_id=crm.id, event_id=1, status="pending", **event))
        widget = await db.scalar(select(Inbox.id).where(Inbox.channel == ChannelKind.WIDGET))
        label = await db.scalar(select(Label.id))
        reply = await db.scalar(select(canned_replies.CannedReply.id))
        ids = {
            "branch": ural.id,
            "bot": bot.id,
            "widget": widget,
            "label": label,
            "reply": reply,
            "invited": invited.operator.id,
        }
    await health.beat(clean_db, worker="worker-1:4242", task_queue="switchboard", started_at=datetime.now(UTC))
    return ids


def _pages(ids: dict[str, int]) -> dict[str, str]:
    return {
        "branches": "/settings/branches",
        "branch": f"/settings/branches/{ids['branch']}",
        "regions": "/settings/branches/regions?region=ru-sve",
        "operators": "/settings/operators",
        "operator": f"/settings/operators/{ids['invited']}",
        "inboxes": "/settings/inboxes",
        "inbox-connect": "/settings/inboxes/connect",
        "inbox-telegram": f"/settings/inboxes/{ids['bot']}",
        "inbox-widget": f"/settings/inboxes/{ids['widget']}",
        "canned-replies": "/settings/canned-replies",
        "canned-reply": f"/settings/canned-replies/{ids['reply']}",
        "labels": "/settings/labels",
        "audit": "/settings/audit",
        "health": "/settings/health",
        "api-tokens": "/settings/api-tokens",
        "profile": "/settings/profile",
    }


async def _look(page, screenshot, name: str, variant: str) -> None:
    await page.wait_for_load_state("load")
    wider = await page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".settings-nav"))
            .slice(0, 5).map(e => e.tagName + "." + e.className + "#" + e.id)"""
    )
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (name, wider)
    await assert_accessible(page)
    await screenshot(page, name)


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_every_settings_page(sign_in, furnished, live_api, screenshot, variant):
    scheme, viewport = VARIANTS[variant]
    page = await sign_in(OperatorRole.ADMIN, color_scheme=scheme, viewport=viewport)
    for name, path in _pages(furnished).items():
        response = await page.goto(live_api.url + path)
        assert response.status == 200, (name, response.status)
        assert await page.locator("nav.settings-nav a[aria-current=page]").count() == 1, name
        await _look(page, screenshot, name, variant)

    # what follows a post: a form with its errors, the bot's confirmation, an invitation's link
    await page.goto(f"{live_api.url}/settings/labels")
    await page.fill("#new-name", "VIP")
    await page.locator("form[action='/settings/labels'] button[type=submit]").click()
    await page.locator("#new-name[aria-invalid=true]").wait_for()
    await _look(page, screenshot, "labels-error", variant)

    await page.goto(f"{live_api.url}/settings/inboxes/connect")
    await page.fill("#f-name", "Второй бот")
    await page.fill("#f-token", TOKEN)
    await page.get_by_role("button", name="Проверить токен").click()
    await page.locator("#bot-name").wait_for()
    assert TOKEN not in await page.content()
    await _look(page, screenshot, "inbox-confirm", variant)

    await page.goto(f"{live_api.url}/settings/operators")
    await page.fill("#name", f"Евгения {variant}")
    await page.fill("#email", f"evgenia-{variant}@example.com")
    await page.get_by_role("button", name="Пригласить").click()
    secret = page.locator("#handover-secret")
    await secret.wait_for()
    link = (await secret.inner_text()).strip()
    await _look(page, screenshot, "operator-invited", variant)

    await page.goto(f"{live_api.url}/settings/api-tokens")
    await page.fill("#token-name", "Отчёты")
    await page.get_by_role("button", name="Создать токен").click()
    await page.locator("#issued-secret").wait_for()
    await _look(page, screenshot, "api-token-created", variant)

    # and the page the invitation opens, before sign-in
    context = await page.context.browser.new_context(color_scheme=scheme, viewport=viewport, locale="ru-RU")
    invitee = await context.new_page()
    await invitee.goto(link.replace("http://localhost:8000", live_api.url))
    assert re.search("Добро пожаловать, Евгения", await invitee.locator("h1").inner_text())
    await _look(invitee, screenshot, "invitation", variant)
    await context.close()


async def test_supervisors_see_only_the_audit_log_health_and_their_profile(sign_in, furnished, live_api, screenshot):
    page = await sign_in(OperatorRole.SUPERVISOR, color_scheme="dark")
    await page.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки").click()
    await page.wait_for_url(f"{live_api.url}/settings/audit")
    sections = await page.locator("nav.settings-nav a").all_inner_texts()
    assert sections == ["Журнал действий", "Состояние системы", "Мой профиль"]
    for path in ("/settings/branches", "/settings/operators", "/settings/inboxes", "/settings/labels"):
        response = await page.goto(live_api.url + path)
        assert response.status == 403
        assert await page.locator("h1").inner_text() == "Нет доступа"
    await _look(page, screenshot, "refused", "dark")


FOCUSED = """() => {
    const e = document.activeElement, s = getComputedStyle(e);
    return {id: e.id, tag: e.tagName, type: e.type || "", text: (e.textContent || "").trim().slice(0, 40),
            visible: e.matches(":focus-visible") && s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2};
}"""


async def _tab(page, times: int = 1) -> dict:
    """Tab on; every stop must show where the keyboard is."""
    for _ in range(times):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        assert focused["visible"], focused
    return focused


async def _tab_to(page, selector: str, most: int = 25) -> None:
    target = page.locator(selector)
    for _ in range(most):
        if await target.evaluate("element => element === document.activeElement"):
            return
        await _tab(page)
    raise AssertionError(f"{selector} not reached with {most} tabs")


async def test_a_settings_form_with_the_keyboard_alone(sign_in, furnished, live_api, clean_db, screenshot):
    """Skip link, Tab through the sections to a form, type, choose a radio with the arrows, tick
    with Space, submit with Enter; Enter in a text field submits too; a confirmation opens and
    is answered from the keyboard. Every stop has a visible focus ring."""
    page = await sign_in(OperatorRole.ADMIN)
    await page.goto(f"{live_api.url}/settings/api-tokens")
    assert (await _tab(page))["text"] == "Перейти к содержимому"
    await page.keyboard.press("Enter")
    await _tab_to(page, "#token-name")  # through the settings sections
    await page.keyboard.type("Склад Урала 2")
    assert (await _tab(page))["id"] == "token-scope-all"
    await page.keyboard.press("ArrowDown")  # the radio group: one stop, arrows choose
    assert await page.locator("#token-scope-branches").is_checked()
    await _tab_to(page, f"#token-branch-{furnished['branch']}")
    await page.keyboard.press("Space")
    await _tab_to(page, "#token-write")
    await page.keyboard.press("Space")
    await _tab_to(page, "form[action='/settings/api-tokens'] button[type=submit]")
    await screenshot(page, "focus-on-submit")
    await page.keyboard.press("Enter")
    await page.locator("#issued-secret").wait_for()
    async with clean_db() as db:
        token = await db.scalar(select(ApiToken).where(ApiToken.name == "Склад Урала 2"))
    assert (token.branch_ids, token.can_write) == ([furnished["branch"]], True)

    # Revoke asks first: the disclosure opens with Enter, its button answers with Enter
    row = page.locator(f"#token-{token.id}")
    await _tab_to(page, f"#token-{token.id} summary", most=60)
    await page.keyboard.press("Enter")
    confirm = row.locator(".confirm-panel button")
    await _tab_to(page, f"#token-{token.id} .confirm-panel button")
    await expect(confirm).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{live_api.url}/settings/api-tokens")
    await expect(page.locator(f"#token-{token.id} .tag")).to_have_text("Отозван")

    # implicit submission: Enter in the field itself
    await page.goto(f"{live_api.url}/settings/labels")
    await page.keyboard.press("Tab")
    await _tab_to(page, "#new-name")
    await page.keyboard.type("Срочно")
    await page.keyboard.press("Enter")
    await expect(page.locator("#toasts")).to_contain_text("Метка «Срочно» добавлена.")
    async with clean_db() as db:
        assert await db.scalar(select(Label.id).where(Label.name == "Срочно")) is not None
