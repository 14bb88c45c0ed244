"""The pre-chat form: the fields an inbox asks for before a visitor's first message, checked on
the server; while nobody answers, the chat asks for a way back, and a request lands in a
conversation with the contact's details filled."""

from __future__ import annotations

from sqlalchemy import select, update

from domain.enums import OperatorRole, OperatorStatus
from infra.models import Branch, Contact, Conversation, Operator
from tests.integration.api_support import assert_problem
from tests.integration.widget_support import Visitor, new_client_id, widget_inbox


async def _someone_online(factory) -> None:
    async with factory() as db, db.begin():
        branch_id = await db.scalar(select(Branch.id).where(Branch.is_default))
        db.add(
            Operator(
                email="online@example.com",
                display_name="On",
                password_hash="-",
                role=OperatorRole.OPERATOR,
                status=OperatorStatus.ONLINE,
                branch_id=branch_id,
            )
        )


async def test_required_fields_come_with_the_first_message(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db, prechat={"name": "required", "email": "optional", "phone": "off"})
    await _someone_online(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    started = (await visitor.start()).json()
    assert started["config"]["offline"] is None
    assert started["config"]["prechat"] == {"name": "required", "email": "optional"}
    refused = assert_problem(await visitor.say("hi"), 422)
    assert refused["errors"] == [{"detail": "Required.", "pointer": "#/name"}]
    bad = await visitor.call(
        "POST", "/messages", json={"client_id": new_client_id(), "text": "hi", "name": "Ann", "email": "nope"}
    )
    assert_problem(bad, 422)
    async with clean_db() as db:
        assert await db.scalar(select(Conversation.id)) is None  # nothing half-written
    sent = await visitor.call(
        "POST", "/messages", json={"client_id": new_client_id(), "text": "hi", "name": "Ann", "email": "a@b.example"}
    )
    assert sent.status_code == 201, sent.text
    assert (await visitor.say("and another thing")).status_code == 201  # asked once, not per message
    async with clean_db() as db:
        contact = await db.scalar(select(Contact))
        context = await db.scalar(select(Conversation.visitor_context))
    assert (contact.display_name, contact.email) == ("Ann", "a@b.example")
    assert context["contact"] == {"name": "Ann", "email": "a@b.example"}


async def test_while_nobody_answers_the_chat_asks_for_a_way_back(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db, offline_text="Back at 9.")
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).values(status=OperatorStatus.OFFLINE))
    visitor = Visitor(live_api.url, inbox_id)
    started = (await visitor.start()).json()
    assert started["config"]["offline"] == {"text": "Back at 9.", "expected_minutes": None}
    assert started["config"]["prechat"] == {"name": "optional", "email": "optional", "phone": "optional"}
    # the details are asked for, not demanded: a request without them still lands
    assert (await visitor.say("just browsing")).status_code == 201
    other = Visitor(live_api.url, inbox_id)
    await other.start()
    sent = await other.call(
        "POST", "/messages", json={"client_id": new_client_id(), "text": "call me back", "phone": "+7 912 000-00-00"}
    )
    assert sent.status_code == 201, sent.text
    async with clean_db() as db:
        phones = set((await db.scalars(select(Contact.phone))).all())
        conversations = (await db.scalars(select(Conversation.id))).all()
    assert phones == {None, "+7 912 000-00-00"} and len(conversations) == 2
