"""A reply sent through the API leaves through the conversation's own channel, once, with the
engine as it runs (outbox relay, workflows, the fake Telegram); a note never leaves."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from domain.enums import DeliveryStatus
from infra.models import Message
from tests.integration.api_support import client, issue_token
from tests.integration.conftest import wait_until
from tests.integration.test_webhooks import SECRET, update


async def test_a_reply_through_the_api_reaches_the_customer_once_and_a_note_never(
    world, engine_stack, live_api, fake_telegram
):
    await world.operator()
    secret = await issue_token(world.factory, branch_ids=[world.branch_id])
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{live_api.url}/webhooks/telegram/{world.inbox_id}",
            json=update(901, "where is my order?", user=777901),
            headers=SECRET,
        )
        assert answer.status_code == 200
    async with world.factory() as db:
        conversation_id = await db.scalar(select(Message.conversation_id))

    async with client(live_api.url, secret) as api:

        async def routed() -> bool:  # the workflow gave it its branch: now the token sees it
            return (await api.get(f"/api/v1/conversations/{conversation_id}")).status_code == 200

        await wait_until(routed)
        note = await api.post(f"/api/v1/conversations/{conversation_id}/notes", json={"text": "check the warehouse"})
        for _ in range(2):  # a retried request
            reply = await api.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": "It ships **today**"},
                headers={"Idempotency-Key": "reply-901"},
            )
        assert note.status_code == reply.status_code == 201

        async def sent() -> bool:
            message = (
                await api.get(f"/api/v1/conversations/{conversation_id}/messages", params={"order": "desc"})
            ).json()
            return message["items"][0]["delivery_status"] == DeliveryStatus.SENT

        await wait_until(sent)
    delivered = fake_telegram.sent_messages()
    assert [(m.chat_id, m.text) for m in delivered] == [("777901", "It ships <b>today</b>")]
