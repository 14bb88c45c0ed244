"""The SQL predicate and ConversationDep say what the pure rule says: conversations in every
placement, viewers of every kind, compared row by row; guessed ids answer 404."""

from __future__ import annotations

import itertools

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from domain.enums import ConversationStatus, OperatorRole
from domain.visibility import Access, Integration, Staff, Visitor, access
from infra.models import Branch, Contact, ContactChat, ContactIdentity, Conversation, Inbox, Operator
from services.errors import Forbidden, Invalid
from services.visibility import load_conversation, placement, require_write, visible_to
from tests.conftest import LiveServer
from tests.integration.realtime_support import staff
from web.deps import ConversationDep


@pytest.fixture
async def placements(clean_db):
    """Two branches, three operators, and a conversation in every placement and status."""
    async with clean_db() as db, db.begin():
        mine, other = Branch(name="Mine"), Branch(name="Other")
        db.add_all([mine, other])
        await db.flush()
        people = [
            Operator(
                email=f"v{n}@example.com",
                display_name=f"V{n}",
                password_hash="x",
                role=OperatorRole.OPERATOR,
                branch_id=b.id,
            )
            for n, b in enumerate([mine, mine, other])
        ]
        inbox = Inbox(name="Telegram", channel="telegram")
        db.add_all([*people, inbox])
        await db.flush()
        conversations = []
        for n, (branch, assignee, status) in enumerate(
            itertools.product(
                [None, mine.id, other.id],
                [None, *[p.id for p in people]],
                [ConversationStatus.OPEN, ConversationStatus.CLOSED],
            )
        ):
            contact = Contact(display_name=f"C{n}")
            db.add(contact)
            await db.flush()
            identity = ContactIdentity(contact_id=contact.id, channel="telegram", provider_user_id=f"u{n}")
            db.add(identity)
            await db.flush()
            db.add(ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id=f"u{n}"))
            await db.flush()
            conversation = Conversation(
                inbox_id=inbox.id,
                contact_id=contact.id,
                identity_id=identity.id,
                branch_id=branch,
                assignee_id=assignee,
                status=status,
            )
            db.add(conversation)
            await db.flush()
            conversations.append(conversation)
        return mine.id, other.id, [p.id for p in people], conversations


async def test_the_predicate_selects_exactly_what_the_rule_allows(clean_db, placements):
    mine, other, (me, colleague, stranger), conversations = placements
    viewers = [
        Staff(me, OperatorRole.OPERATOR, mine),
        Staff(stranger, OperatorRole.OPERATOR, other),
        Staff(me, OperatorRole.OPERATOR, None),
        Staff(colleague, OperatorRole.SUPERVISOR, mine),
        Staff(me, OperatorRole.ADMIN, None),
        Visitor(conversations[5].id),
        Visitor(10**12),
        Integration(1, frozenset({mine}), writes=True),
        Integration(2, frozenset({mine, other}), writes=False),
        Integration(3, None, writes=False),
        Integration(4, frozenset(), writes=True),
    ]
    async with clean_db() as db:
        for viewer in viewers:
            got = set(await db.scalars(select(Conversation.id).where(visible_to(viewer))))
            allowed = {c.id for c in conversations if access(viewer, placement(c)) != Access.NONE}
            assert got == allowed, viewer


async def test_loading_one_conversation_checks_it_and_writing_needs_write_access(clean_db, placements):
    mine, _other, (me, colleague, _stranger), conversations = placements
    pool = next(c for c in conversations if c.branch_id == mine and c.assignee_id is None)
    theirs = next(c for c in conversations if c.assignee_id == colleague)
    async with clean_db() as db:
        operator = Staff(me, OperatorRole.OPERATOR, mine)
        loaded = await load_conversation(db, operator, pool.id)
        assert loaded.id == pool.id
        require_write(operator, loaded)  # the pool is theirs to answer
        for forbidden_id in (theirs.id, 10**12, -1):
            with pytest.raises(Forbidden):
                await load_conversation(db, operator, forbidden_id)
        supervisor = Staff(colleague + 10**6, OperatorRole.SUPERVISOR, mine)
        watched = await load_conversation(db, supervisor, theirs.id)
        assert watched.id == theirs.id
        with pytest.raises(Invalid, match="Read-only"):
            require_write(supervisor, watched)


async def test_conversation_dep_answers_404_for_not_yours_and_for_nonexistent(app_settings, clean_db, placements):
    from api import create_app

    mine, _other, (_me, colleague, _stranger), conversations = placements
    pool = next(c for c in conversations if c.branch_id == mine and c.assignee_id is None)
    theirs = next(c for c in conversations if c.assignee_id == colleague)
    app: FastAPI = create_app(app_settings)

    @app.get("/probe/{conversation_id}")
    async def probe(conversation: ConversationDep) -> dict:
        return {"id": conversation.id}

    _, cookie = await staff(clean_db, OperatorRole.OPERATOR, branch_id=mine)
    server = LiveServer(app).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, cookies={"sb_session": cookie}) as http:
            ok = await http.get(f"/probe/{pool.id}")
            not_mine = await http.get(f"/probe/{theirs.id}")
            missing = await http.get(f"/probe/{10**12}")
            page = await http.get(f"/probe/{theirs.id}", headers={"accept": "text/html"})
            missing_page = await http.get(f"/probe/{10**12}", headers={"accept": "text/html"})
            huge = await http.get(f"/probe/{10**30}")
    finally:
        server.stop()
    assert ok.json() == {"id": pool.id}
    assert not_mine.status_code == missing.status_code == 404
    assert not_mine.json() == missing.json()  # nothing tells "exists" from "not yours"
    assert not_mine.headers["content-type"] == "application/problem+json"
    assert page.status_code == missing_page.status_code == huge.status_code == 404
    assert "<html" in page.text and page.text == missing_page.text  # the cabinet's own 404 page, the same
