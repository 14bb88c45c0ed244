"""The shared send schedule in PostgreSQL: slots per bot and per chat, agreed across workers, as
the provider counts them (a strict sliding window over arrival times)."""

import asyncio
import random
from datetime import datetime
from itertools import pairwise

from infra.ratelimit import MARGIN, Limit, reserve
from tests.fakes.ratelimit import RateMeter, RateRule, Scope

BOT = "telegram:1"
PER_BOT = Limit.per_second(2)  # 2 sends in any second for the bot
PER_CHAT = Limit.per_second(1)
CHAT_GAP = 1 + MARGIN.total_seconds()  # one send per second to a chat, with the margin


def keys(chat: str, bot: Limit = PER_BOT) -> dict[str, Limit]:
    return {BOT: bot, f"{BOT}:{chat}": PER_CHAT}


def seconds(a: datetime, b: datetime) -> float:
    return round((b - a).total_seconds(), 6)


async def test_one_chat_is_served_once_per_window_and_another_chat_only_waits_for_the_bot(db):
    a1, a2, a3 = [await reserve(db, keys("a")) for _ in range(3)]
    b1 = await reserve(db, keys("b"))
    assert [seconds(a1, a2), seconds(a2, a3)] == [CHAT_GAP, CHAT_GAP]
    # chat b is new: only the bot's clock (a3 + 0.5 s) holds it back
    assert seconds(a3, b1) == 0.5


async def test_a_chat_waits_a_full_window_after_a_send_the_bot_delayed(db):
    # other chats push the bot's clock ahead of chat a's
    for chat in "bcd":
        await reserve(db, keys(chat))
    first = await reserve(db, keys("a"))
    second = await reserve(db, keys("a"))
    # the first send to chat a happens when the bot is free; the chat's window runs from then
    assert seconds(first, second) >= CHAT_GAP


async def test_concurrent_workers_get_distinct_slots_that_never_fill_a_window(clean_db):
    async def one(chat: int):
        async with clean_db() as db, db.begin():
            return await reserve(db, keys(str(chat)))

    slots = sorted(await asyncio.gather(*(one(i) for i in range(12))))
    assert min(seconds(x, y) for x, y in pairwise(slots)) >= 0.5  # the bot's own rate
    # no three sends of the bot (2 a second) within a second and the margin
    assert min(seconds(slots[i], slots[i + 2]) for i in range(len(slots) - 2)) >= 1 + MARGIN.total_seconds()


async def test_sends_arriving_up_to_the_margin_late_break_no_provider_window_and_keep_96_percent_of_the_rate(db):
    """Telegram's limits (30 a second per bot, 1 per chat) as the fake counts them, with every
    send reaching it up to MARGIN after its slot (randomly, so the early ones of a window are
    sometimes the late ones): not one window overfull. The bot still sends 30 per 1.04 s."""
    telegram = Limit.per_second(30)
    chats = [str(c) for c in range(40)]
    slots: list[tuple[datetime, str]] = []
    for _ in range(10):
        for chat in chats:
            slots.append((await reserve(db, keys(chat, telegram)), chat))
    meter = RateMeter((RateRule("per_chat", 1, 1.0, Scope.CHAT), RateRule("per_bot", 30, 1.0, Scope.BOT)))
    late = random.Random(7)
    arrivals = sorted((slot.timestamp() + late.uniform(0, MARGIN.total_seconds()), chat) for slot, chat in slots)
    for at, chat in arrivals:
        meter.admit(chat, True, at)
    assert meter.violations() == {"per_chat": 0, "per_bot": 0}

    times = sorted(slot for slot, _ in slots)
    rate = (len(times) - 1) / seconds(times[0], times[-1])
    assert 30 / (1 + MARGIN.total_seconds()) * 0.99 <= rate <= 30, rate
