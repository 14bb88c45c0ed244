"""The api's typing entry point: from a conversation id to one sendChatAction per burst."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import update

from domain.enums import ChannelKind
from infra.models import ContactChat
from services.ingest import ingest
from services.typing_indicator import TypingThrottle
from tests.integration.channel_support import (  # noqa: F401
    Channels,
    channels,
)


async def test_operator_typing_reaches_the_customers_chat_once_per_burst(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    [event] = env.adapters[ChannelKind.TELEGRAM].parse_update(
        inbox_id, {"update_id": 1, **tg.make_message(4242, "hi")}, received_at=datetime.now(UTC)
    )
    conversation_id = (await ingest(env.factory, event)).conversation_id

    now = [0.0]
    throttle = TypingThrottle(env.adapters, clock=lambda: now[0])
    sent = await asyncio.gather(
        *(throttle.conversation_typing(env.factory, env.box, conversation_id) for _ in range(30))
    )
    assert sent.count(True) == 1
    assert [(r.chat_id, r.params["action"]) for r in tg.requests("sendChatAction")] == [("4242", "typing")]

    # the customer blocked the bot: nothing is sent, nothing is raised
    async with env.factory() as db, db.begin():
        await db.execute(update(ContactChat).values(reachable=False))
    now[0] += 5
    assert await throttle.conversation_typing(env.factory, env.box, conversation_id) is False
    assert await throttle.conversation_typing(env.factory, env.box, 999_999_999) is False  # no such conversation
    assert len(tg.requests("sendChatAction")) == 1
