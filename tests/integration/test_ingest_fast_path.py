"""The inbound hot path (a known contact writing into its open conversation): one statement on
the raw driver connection. These tests pin what it must still do that the general path does."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from domain.contracts import ContactProfile
from domain.conversation import NoticeKind
from domain.enums import MessageDirection, SenderKind
from domain.events import ConversationCreated, ConversationIds, MessageCreated
from infra.models import Branch, Contact, ContactChat, ContactIdentity, Conversation, Message, OutboxEvent
from services.ingest import ingest
from tests.integration.realtime_support import announcements, commit, status_event


async def _notices(factory, conversation_id: int) -> list[str]:
    async with factory() as db:
        rows = await db.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.conversation_id == conversation_id).order_by(OutboxEvent.id)
        )
        return [p["kind"] for p in rows]


async def _route(factory, conversation_id: int, branch_id: int) -> None:
    async with factory() as db, db.begin():
        await db.execute(update(Conversation).where(Conversation.id == conversation_id).values(branch_id=branch_id))


async def test_second_message_is_stored_touched_and_announced(world, database_url):
    first = await ingest(world.factory, world.event("fast-1", "hello"))
    long_ago = datetime.now(UTC) - timedelta(days=1)
    async with world.factory() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(last_in_at=long_ago, last_activity_at=long_ago)
        )
    async with announcements(database_url) as heard:
        second = await ingest(world.factory, world.event("fast-1", "are you there?"))
        announced = await asyncio.wait_for(heard.get(), 5)
    assert second.conversation_id == first.conversation_id and not second.created_conversation
    assert announced.name == "message.created"
    ref = ConversationIds(conversation_id=first.conversation_id, inbox_id=world.inbox_id)
    expected = MessageCreated.of(
        ref, message_id=second.message_id, direction=MessageDirection.IN, sender_kind=SenderKind.CONTACT
    )
    assert json.loads(announced.payload) == expected.payload()
    async with world.factory() as db:
        conversation = await db.get(Conversation, first.conversation_id)
        text = await db.scalar(select(Message.text).where(Message.id == second.message_id))
    assert text == "are you there?"
    # the statement itself moved both: they are now, not the day-old values set above
    assert conversation.last_in_at > long_ago + timedelta(hours=23)
    assert conversation.last_activity_at > long_ago + timedelta(hours=23)
    # only the conversation's start told the workflow anything: a plain message needs no outbox row
    assert await _notices(world.factory, first.conversation_id) == [NoticeKind.STARTED]


async def test_duplicate_on_the_fast_path_writes_and_announces_nothing(world, database_url):
    await ingest(world.factory, world.event("fast-2", "hello"))
    event = world.event("fast-2", "again", message_id="fast-2:dup")
    stored = await ingest(world.factory, event)
    async with announcements(database_url) as heard:
        again = await ingest(world.factory, event)
        marker = status_event(1, None, None, message_id=424242)
        await commit(world.factory, marker)  # committed after the duplicate: heard after anything it announced
        first_heard = await asyncio.wait_for(heard.get(), 5)
    assert json.loads(first_heard.payload) == marker.payload(), "a duplicate must not be announced"
    assert again.duplicate and again.message_id == stored.message_id
    async with world.factory() as db:
        assert (
            await db.scalar(
                select(func.count()).select_from(Message).where(Message.conversation_id == stored.conversation_id)
            )
            == 2
        )


async def test_message_while_the_branch_is_closed_tells_the_workflow_in_the_same_statement(world):
    # the default branch here is open around the clock: no notice for its messages, and the
    # process's schedule cache is fresh afterwards
    day = await ingest(world.factory, world.event("fast-3", "hello"))
    await _route(world.factory, day.conversation_id, world.branch_id)
    await ingest(world.factory, world.event("fast-3", "second"))
    assert await _notices(world.factory, day.conversation_id) == [NoticeKind.STARTED]

    # a branch the cache has not seen yet: the fast path reloads rather than guess it is open
    async with world.factory() as db, db.begin():
        closed = Branch(name="Night shift", timezone="UTC", working_hours={"timezone": "UTC", "weekly": {}})
        db.add(closed)
        await db.flush()
        closed_id = closed.id
    night = await ingest(world.factory, world.event("fast-4", "hello"))
    await _route(world.factory, night.conversation_id, closed_id)
    second = await ingest(world.factory, world.event("fast-4", "anyone?"))
    assert not second.duplicate and second.message_id is not None
    assert await _notices(world.factory, night.conversation_id) == [NoticeKind.STARTED, NoticeKind.OFF_HOURS_MESSAGE]
    await ingest(world.factory, world.event("fast-4", "hello??"))
    assert await _notices(world.factory, night.conversation_id) == [
        NoticeKind.STARTED,
        NoticeKind.OFF_HOURS_MESSAGE,
        NoticeKind.OFF_HOURS_MESSAGE,
    ]


async def test_a_resolved_conversation_is_left_to_the_general_path(world):
    first = await ingest(world.factory, world.event("fast-5", "hello"))
    async with world.factory() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(status="resolved", resolved_at=func.now())
        )
    again = await ingest(world.factory, world.event("fast-5", "it broke again"))
    assert again.conversation_id == first.conversation_id
    async with world.factory() as db:
        assert await db.scalar(select(Conversation.status).where(Conversation.id == first.conversation_id)) == "open"
    assert await _notices(world.factory, first.conversation_id) == [NoticeKind.STARTED, NoticeKind.REOPENED]


async def test_first_message_creates_contact_identity_conversation_and_tells_the_workflow(world, database_url):
    async with announcements(database_url) as heard:
        event = world.event("first-1", "hi there").model_copy(
            update={"profile": ContactProfile(display_name="Ann Smith", username="ann", region="RU-MOW")}
        )
        result = await ingest(world.factory, event)
        announced = [await asyncio.wait_for(heard.get(), 5) for _ in range(2)]
    assert result.created_conversation and not result.duplicate
    ref = ConversationIds(conversation_id=result.conversation_id, inbox_id=world.inbox_id)
    async with world.factory() as db:
        contact_id = await db.scalar(select(Conversation.contact_id).where(Conversation.id == result.conversation_id))
    # the conversation first, then its message, ids in that order
    assert [(a.name, json.loads(a.payload)) for a in announced] == [
        ("conversation.created", ConversationCreated.of(ref, contact_id=contact_id).payload()),
        (
            "message.created",
            MessageCreated.of(
                ref, message_id=result.message_id, direction=MessageDirection.IN, sender_kind=SenderKind.CONTACT
            ).payload(),
        ),
    ]
    assert announced[0].id < announced[1].id
    async with world.factory() as db:
        conversation = await db.get(Conversation, result.conversation_id)
        identity = await db.get(ContactIdentity, conversation.identity_id)
        chat = await db.get(ContactChat, (conversation.identity_id, world.inbox_id))
        contact = await db.get(Contact, conversation.contact_id)
        message = await db.get(Message, result.message_id)
    assert (conversation.status, conversation.inbox_id, conversation.interface) == ("open", world.inbox_id, "bot")
    assert conversation.last_in_at is not None and conversation.branch_id is None
    assert (identity.channel, identity.provider_user_id, identity.username) == (
        "telegram",
        event.provider_user_id,
        "ann",
    )
    assert (chat.provider_chat_id, chat.reachable, chat.lifecycle_at) == (event.provider_chat_id, True, None)
    assert identity.contact_id == contact.id and (contact.display_name, contact.region) == ("Ann Smith", "RU-MOW")
    assert (message.text, message.direction, message.provider_message_id) == (
        "hi there",
        "in",
        event.provider_message_id,
    )
    assert await _notices(world.factory, result.conversation_id) == [NoticeKind.STARTED]

    again = await ingest(world.factory, event)
    assert again.duplicate and again.message_id == result.message_id


async def test_after_a_closed_conversation_the_same_contact_starts_a_new_one(world):
    first = await ingest(world.factory, world.event("first-2", "hello"))
    async with world.factory() as db, db.begin():
        await db.execute(
            update(Conversation)
            .where(Conversation.id == first.conversation_id)
            .values(status="closed", closed_at=func.now())
        )
    second = await ingest(world.factory, world.event("first-2", "new question"))
    assert second.created_conversation and second.conversation_id != first.conversation_id
    async with world.factory() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 1
        assert await db.scalar(select(func.count()).select_from(ContactIdentity)) == 1
    assert await _notices(world.factory, second.conversation_id) == [NoticeKind.STARTED]


async def test_concurrent_first_messages_of_many_new_contacts_leave_no_orphans(world):
    events = [world.event(f"race-{i % 10}", f"hello {i}") for i in range(40)]
    results = await asyncio.gather(*(ingest(world.factory, e) for e in events))
    assert len({r.message_id for r in results}) == 40
    async with world.factory() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 10
        assert await db.scalar(select(func.count()).select_from(ContactIdentity)) == 10
        assert await db.scalar(select(func.count()).select_from(Conversation)) == 10
        started = await db.scalar(select(func.count()).select_from(OutboxEvent))
    assert started == 10
    assert sum(r.created_conversation for r in results) == 10


async def test_a_message_from_another_chat_than_the_stored_one_moves_the_chat(world):
    """Rows migrated from one chat per identity may hold a chat of another bot or a group: the
    next message of the dialog puts its own chat there (the hot path leaves it to the general one)."""
    first = await ingest(world.factory, world.event("moved-1", "hello"))
    async with world.factory() as db, db.begin():
        await db.execute(update(ContactChat).values(provider_chat_id="-100500"))
    again = await ingest(world.factory, world.event("moved-1", "still me"))
    assert again.conversation_id == first.conversation_id and again.message_id is not None
    async with world.factory() as db:
        assert await db.scalar(select(ContactChat.provider_chat_id)) == world.event("moved-1").provider_chat_id
        assert await db.scalar(select(func.count()).select_from(Message)) == 2
