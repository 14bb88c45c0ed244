"""Helpers for REST API tests: tokens issued through the service, clients that send them, and
answers checked to be problem+json."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, OperatorStatus, SenderKind
from infra.models import Branch, Contact, ContactChat, ContactIdentity, Conversation, Inbox, Message, Operator
from services.api_tokens import create_token


async def issue_token(
    factory: async_sessionmaker[AsyncSession],
    *,
    branch_ids: Iterable[int] | None = None,
    can_write: bool = True,
    name: str = "CRM",
) -> str:
    async with factory() as db, db.begin():
        return (await create_token(db, None, name=name, branch_ids=branch_ids, can_write=can_write)).secret


def client(base_url: str, secret: str | None = None, **kw) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, **kw)


def assert_problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"], body
    return body


@dataclass
class Scene:
    """Two branches; in each an operator, a conversation in the pool and one assigned, each with
    a contact (phone, e-mail, a Telegram identity) and a customer message; one conversation not
    routed yet; tokens of my branch (read-write, read-only) and of all branches."""

    factory: async_sessionmaker[AsyncSession]
    mine: int
    other: int
    inbox_id: int
    my_operator: int
    other_operator: int
    my_pool: int
    my_assigned: int
    other_pool: int
    other_assigned: int
    unrouted: int
    contacts: dict[int, int]  # conversation id -> contact id
    writer: str = ""
    reader: str = ""
    everything: str = ""


async def make_scene(factory: async_sessionmaker[AsyncSession]) -> Scene:
    async with factory() as db, db.begin():
        mine, other = Branch(name="Mine", is_default=True), Branch(name="Other")
        inbox = Inbox(name="Telegram", channel=ChannelKind.TELEGRAM)
        db.add_all([mine, other, inbox])
        await db.flush()
        operators = [
            Operator(
                email=f"api-op{n}@example.com",
                display_name=f"Op {n}",
                password_hash="x",
                role=OperatorRole.OPERATOR,
                branch_id=branch.id,
                status=OperatorStatus.ONLINE,
            )
            for n, branch in enumerate((mine, other))
        ]
        db.add_all(operators)
        await db.flush()
        conversations, contacts = [], {}
        placements = [
            (mine.id, None),
            (mine.id, operators[0].id),
            (other.id, None),
            (other.id, operators[1].id),
            (None, None),
        ]
        for n, (branch_id, assignee_id) in enumerate(placements):
            contact = Contact(
                display_name=f"Customer {n}", phone=f"+7 (900) 000-00-0{n}", email=f"customer{n}@example.com"
            )
            db.add(contact)
            await db.flush()
            identity = ContactIdentity(
                contact_id=contact.id,
                channel=ChannelKind.TELEGRAM,
                provider_user_id=f"9000{n}",
            )
            db.add(identity)
            await db.flush()
            db.add(ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id=f"8000{n}"))
            await db.flush()
            at = datetime.now(UTC) - timedelta(minutes=10 - n)
            conversation = Conversation(
                inbox_id=inbox.id,
                contact_id=contact.id,
                identity_id=identity.id,
                branch_id=branch_id,
                assignee_id=assignee_id,
                last_in_at=at,
                last_activity_at=at,
            )
            db.add(conversation)
            await db.flush()
            db.add(
                Message(
                    conversation_id=conversation.id,
                    inbox_id=inbox.id,
                    direction=MessageDirection.IN,
                    sender_kind=SenderKind.CONTACT,
                    text=f"hello from {n}",
                    provider_message_id=f"m{n}",
                    delivery_status=DeliveryStatus.RECEIVED,
                )
            )
            conversations.append(conversation.id)
            contacts[conversation.id] = contact.id
    scene = Scene(factory, mine.id, other.id, inbox.id, operators[0].id, operators[1].id, *conversations, contacts)
    scene.writer = await issue_token(factory, branch_ids=[mine.id], name="writer")
    scene.reader = await issue_token(factory, branch_ids=[mine.id], can_write=False, name="reader")
    scene.everything = await issue_token(factory, name="everything")
    return scene
