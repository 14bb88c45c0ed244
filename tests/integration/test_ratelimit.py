"""The shared send schedule in PostgreSQL: slots per bot and per chat, agreed across workers."""

import asyncio
from itertools import pairwise

from infra.ratelimit import reserve

BOT, PER_BOT = "telegram:1", 0.5  # 2 sends/s for the bot
PER_CHAT = 1.0


def keys(chat: str) -> dict[str, float]:
    return {BOT: PER_BOT, f"{BOT}:{chat}": PER_CHAT}


async def test_one_chat_is_served_once_per_interval_and_another_chat_only_waits_for_the_bot(db):
    a1, a2, a3 = [await reserve(db, keys("a")) for _ in range(3)]
    b1 = await reserve(db, keys("b"))
    assert [(y - x).total_seconds() for x, y in [(a1, a2), (a2, a3)]] == [PER_CHAT, PER_CHAT]
    # chat b is new: only the bot's clock (pushed to a3 + 0.5 s) holds it back
    assert (b1 - a3).total_seconds() == PER_BOT


async def test_a_chat_waits_a_full_interval_after_a_send_the_bot_delayed(db):
    # other chats push the bot's clock ahead of chat a's
    for chat in "bcd":
        await reserve(db, keys(chat))
    first = await reserve(db, keys("a"))
    second = await reserve(db, keys("a"))
    # the first send to chat a happens when the bot is free; the chat's interval runs from then
    assert (second - first).total_seconds() >= PER_CHAT


async def test_concurrent_workers_get_distinct_slots_spaced_by_the_bot_interval(clean_db):
    async def one(chat: int):
        async with clean_db() as db, db.begin():
            return await reserve(db, keys(str(chat)))

    slots = sorted(await asyncio.gather(*(one(i) for i in range(12))))
    gaps = [(y - x).total_seconds() for x, y in pairwise(slots)]
    assert min(gaps) >= PER_BOT - 1e-6, gaps
