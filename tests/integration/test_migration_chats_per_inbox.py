"""Migration 0006 on a database with rows: each identity's one chat becomes a chat per inbox it
talks through, a Telegram group chat becomes the user's private chat, stored button presses
become presses; and back."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infra.settings import ROOT

BEFORE = "0007_engine_hardening"
AFTER = "0008_chats_per_inbox"


def _alembic(url: str, action, revision: str) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    action(cfg, revision)


async def _run(url: str, *statements: str) -> list[list[tuple]]:
    engine = create_async_engine(url)
    results = []
    async with engine.begin() as conn:
        for statement in statements:
            result = await conn.execute(text(statement))
            results.append([tuple(r) for r in result] if result.returns_rows else [])
    await engine.dispose()
    return results


OLD_ROWS = """
    INSERT INTO inboxes (id, name, channel) VALUES
        (1, 'tg shop', 'telegram'), (2, 'tg service', 'telegram'), (3, 'max', 'max');
    INSERT INTO contacts (id, display_name) VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cid'), (4, 'Dan');
    INSERT INTO contact_identities (id, contact_id, channel, provider_user_id, provider_chat_id, reachable,
                                    unreachable_reason) VALUES
        (1, 1, 'telegram', '111', '111', true, NULL),           -- writes to both Telegram bots
        (2, 2, 'telegram', '222', '-100999', true, NULL),       -- first wrote in a group
        (3, 3, 'max', '333', '9333', false, 'stopped'),         -- stopped the MAX bot, no conversation
        (4, 4, 'telegram', '444', '444', false, 'blocked');     -- blocked, no conversation, two bots
    INSERT INTO conversations (id, inbox_id, contact_id, identity_id, status) VALUES
        (1, 1, 1, 1, 'open'), (2, 2, 1, 1, 'closed'), (3, 1, 2, 2, 'open');
    INSERT INTO messages (id, conversation_id, inbox_id, direction, sender_kind, text, provider_message_id,
                          delivery_status) VALUES
        (1, 1, 1, 'in', 'contact', 'hello', '111:1', 'received'),
        (2, 1, 1, 'in', 'contact', 'rate:5', 'callback:77', 'received');
"""


async def test_existing_identities_get_a_chat_per_inbox_and_back(postgres):
    url = postgres.create_database("migration_0008_rows")
    await asyncio.to_thread(_alembic, url, command.upgrade, BEFORE)
    await _run(url, *filter(str.strip, OLD_ROWS.split(";")))

    await asyncio.to_thread(_alembic, url, command.upgrade, AFTER)
    chats, messages = await _run(
        url,
        "SELECT identity_id, inbox_id, provider_chat_id, reachable, unreachable_reason "
        "FROM contact_chats ORDER BY identity_id, inbox_id",
        "SELECT id, kind::text, text, button_data FROM messages ORDER BY id",
    )
    assert chats == [
        (1, 1, "111", True, None),
        (1, 2, "111", True, None),
        (2, 1, "222", True, None),  # the private chat, not the group
        (3, 3, "9333", False, "stopped"),  # MAX has one inbox: it was that bot
    ]  # identity 4 had no conversation and Telegram two bots: its next event decides
    assert messages == [(1, "text", "hello", None), (2, "button", "rate:5", "rate:5")]

    await asyncio.to_thread(_alembic, url, command.downgrade, BEFORE)
    [identities] = await _run(url, "SELECT id, provider_chat_id, reachable FROM contact_identities ORDER BY id")
    assert identities == [(1, "111", True), (2, "222", True), (3, "9333", False), (4, "444", True)]
