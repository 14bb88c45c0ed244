"""Rotating an inbox's webhook secret loses no update: the new secret is stored before the
provider is told, the old one stays accepted for the grace period (deliveries in flight and the
provider's retries), and after the switch only the new one gets in. Over real HTTP, against the
fake Telegram that records the secret it was given, with the api's own credential cache."""

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from domain.enums import MessageDirection
from infra.models import Message, Operator
from infra.security import CredentialBox
from services import inbox_settings
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.telegram import TOKEN
from tests.integration.conftest import wait_until
from tests.integration.settings_support import https_api, sign_in  # noqa: F401
from tests.integration.test_settings_inboxes import _connect, _inbox

BOX = CredentialBox(TEST_CREDENTIALS_KEY)


async def test_a_rotated_secret_accepts_the_new_one_and_rejects_the_old_after_the_switch(
    https_api, admin, clean_db, fake_telegram, app_settings
):
    client = await sign_in(https_api.url, admin["email"], admin["password"])
    await _connect(client, "telegram", TOKEN)
    inbox = await _inbox(clean_db)
    old = fake_telegram.webhook["secret_token"]
    route = f"{https_api.url}/webhooks/telegram/{inbox.id}"
    accepted: list[int] = []  # update ids the route took

    async def deliver(secret: str) -> int:
        update = fake_telegram.inject_message(31337, "сообщение")
        async with httpx.AsyncClient() as http:
            answer = await http.post(route, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        if answer.status_code == 200:
            accepted.append(update["update_id"])
        return answer.status_code

    assert await deliver(old) == 200  # the api caches these credentials now

    # the admin's rotation, with a short grace so the test sees it end
    async with clean_db() as db:
        actor = await db.scalar(select(Operator).where(Operator.email == admin["email"]))
    async with httpx.AsyncClient() as http:
        from channels.registry import build_adapters

        adapters = build_adapters(http, app_settings)
        rotation = await inbox_settings.rotate_secret(
            clean_db, BOX, adapters, actor, inbox.id, grace=timedelta(seconds=3)
        )
    new = fake_telegram.webhook["secret_token"]
    assert new != old and new == BOX.open((await _inbox(clean_db)).credentials_encrypted)["webhook_secret"]

    # during the switch both are accepted: the new one at once (the api re-reads credentials it
    # had cached when a secret does not match), the old one for what the provider sent before
    async def new_accepted() -> bool:
        return await deliver(new) == 200

    await wait_until(new_accepted, timeout=10, interval=0.3)
    assert await deliver(old) == 200

    async def old_refused() -> bool:
        return await deliver(old) == 401

    await wait_until(old_refused, timeout=15, interval=0.3)
    assert rotation.previous_until < datetime.now(UTC)
    assert await deliver(new) == 200
    assert await deliver("made-up-secret") == 401

    # every update the route took is stored, once
    async with clean_db() as db:
        stored = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.inbox_id == inbox.id, Message.direction == MessageDirection.IN)
        )
    assert stored == len(accepted) >= 4
    await client.http.aclose()
