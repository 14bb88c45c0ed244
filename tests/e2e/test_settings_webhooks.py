"""An admin adds an outgoing webhook endpoint in the browser, copies its secret, and after a
customer's message (the real ingest path, a real worker, a receiver on loopback) sees the delivery
in the endpoint's journal; the pages pass axe in light, dark and on a phone."""

from contextlib import suppress
from datetime import UTC, datetime

import httpx
from playwright.async_api import expect
from sqlalchemy import select
from temporalio.service import RPCError

from domain.contracts import InboundEvent, InboundKind
from domain.enums import ChannelKind, OperatorRole
from domain.ids import staff_notifier_workflow_id, webhook_endpoint_workflow_id
from infra.models import Inbox, StaffNotificationRule, WebhookAttempt, WebhookEndpoint
from services.ingest import ingest
from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import PHONE
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker


async def _customer_writes(factory, text: str) -> None:
    async with factory() as db, db.begin():
        inbox = Inbox(name="Магазин", channel=ChannelKind.TELEGRAM, credentials_encrypted=b"")
        db.add(inbox)
        await db.flush()
        inbox_id = inbox.id
    event = InboundEvent(
        inbox_id=inbox_id,
        channel=ChannelKind.TELEGRAM,
        kind=InboundKind.MESSAGE,
        provider_user_id="7001",
        provider_chat_id="7001",
        provider_message_id="7001:1",
        provider_time=datetime.now(UTC),
        text=text,
    )
    await ingest(factory, event)


async def _journal_has_a_row(factory) -> bool:
    async with factory() as db:
        return await db.scalar(select(WebhookAttempt.id).limit(1)) is not None


async def test_an_admin_adds_an_endpoint_and_sees_a_delivery_in_its_journal(
    sign_in, clean_db, temporal_client, app_settings, screenshot
):
    endpoint_id = None
    async with (
        WebhookReceiver() as receiver,
        httpx.AsyncClient() as http,
        build_worker(temporal_client, app_settings, build_activities(clean_db, app_settings, http)),
    ):
        try:
            admin = await sign_in(OperatorRole.ADMIN)
            await admin.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки").click()
            await (
                admin.get_by_role("navigation", name="Настройки").get_by_role("link", name="Исходящие вебхуки").click()
            )
            await admin.get_by_label("Название", exact=True).fill("CRM")
            await admin.get_by_label("Адрес (URL)").fill(receiver.url)
            await admin.get_by_label("Ответ отправлен, доставлен, прочитан или не доставлен").check()
            await admin.get_by_role("button", name="Добавить адрес").click()
            secret = await admin.get_by_label("Секрет подписи").input_value()
            assert secret.startswith("whsec_")
            await assert_accessible(admin)
            await screenshot(admin, "1-added")
            async with clean_db() as db:
                endpoint = await db.scalar(select(WebhookEndpoint))
                endpoint_id = endpoint.id
            assert endpoint.events == ["conversation.created", "message.created", "message.status_changed"]

            await _customer_writes(clean_db, "Здравствуйте, где мой заказ?")
            await wait_until(lambda: len(receiver.accepted()) >= 2, timeout=30)
            await wait_until(lambda: _journal_has_a_row(clean_db), timeout=30)
            await admin.get_by_role("link", name="Открыть адрес и его журнал").click()
            journal = admin.get_by_role("table")
            await expect(journal).to_contain_text("message.created")
            await expect(journal).to_contain_text("200 доставлено")
            assert secret not in await admin.content()
            await assert_accessible(admin)
            await screenshot(admin, "2-journal-light")

            dark = await sign_in(OperatorRole.ADMIN, color_scheme="dark")
            await dark.goto(admin.url)
            await expect(dark.get_by_role("table")).to_contain_text("message.created")
            await assert_accessible(dark)
            await screenshot(dark, "3-journal-dark")

            phone = await sign_in(OperatorRole.ADMIN, viewport=PHONE)
            await phone.goto(admin.url)
            await expect(phone.get_by_role("heading", name="Журнал доставки")).to_be_visible()
            await assert_accessible(phone)
            await screenshot(phone, "4-journal-phone")
            await phone.goto(admin.url.rsplit("/", 1)[0])
            await screenshot(phone, "5-list-phone")
        finally:
            if endpoint_id is not None:
                with suppress(RPCError):
                    await temporal_client.get_workflow_handle(webhook_endpoint_workflow_id(endpoint_id)).terminate()


async def test_the_bitrix24_and_staff_notification_pages_connect_and_add_a_rule(
    sign_in, clean_db, temporal_client, screenshot
):
    async with clean_db() as db, db.begin():
        db.add(Inbox(name="Бот персонала", channel=ChannelKind.TELEGRAM, credentials_encrypted=b""))
    admin = await sign_in(OperatorRole.ADMIN)
    settings = admin.get_by_role("navigation", name="Настройки")
    await admin.get_by_role("navigation", name="Разделы").get_by_role("link", name="Настройки").click()
    await settings.get_by_role("link", name="Битрикс24").click()
    await admin.get_by_label("Адрес входящего вебхука").fill("https://shop.bitrix24.ru/rest/17/s3cr3tc0de/")
    await admin.get_by_label("Ответственный (id пользователя Битрикс24)").fill("5")
    await admin.get_by_role("button", name="Подключить").click()
    await expect(admin.get_by_role("table")).to_contain_text("shop.bitrix24.ru")
    assert "s3cr3tc0de" not in await admin.content()
    await assert_accessible(admin)
    await screenshot(admin, "1-bitrix24")

    await settings.get_by_role("link", name="Уведомления сотрудникам").click()
    await admin.get_by_label("Первое сообщение диалога").check()
    await admin.get_by_label("Id чата Telegram").fill("-1001234567890")
    await admin.get_by_role("button", name="Добавить правило").click()
    await expect(admin.get_by_role("table")).to_contain_text("-1001234567890")
    await assert_accessible(admin)
    await screenshot(admin, "2-staff-notifications")

    phone = await sign_in(OperatorRole.ADMIN, viewport=PHONE, color_scheme="dark")
    await phone.goto(admin.url)
    await assert_accessible(phone)
    await screenshot(phone, "3-staff-notifications-dark-phone")
    async with clean_db() as db:
        rule_id = await db.scalar(select(StaffNotificationRule.id))
    with suppress(RPCError):  # the page started its notifier; no worker of this test runs it
        await temporal_client.get_workflow_handle(staff_notifier_workflow_id(rule_id)).terminate()
