"""Every settings page in a real browser, light and dark at desktop width and at phone width:
axe-core finds no serious or critical violation, nothing overflows sideways, and each is saved as
a screenshot (.pytest-tmp/artifacts/screenshots/test_every_settings_page_*). Pages that follow a
post (the bot's confirmation, an invitation's link, a form with errors, the invitation page) are
reached by filling the forms, as an admin would."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, SenderKind
from infra.models import (
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
