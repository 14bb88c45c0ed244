"""Contacts: search by phone, e-mail or a channel's user id; get; update; export as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from domain.contracts import PHONE_MAX, PROVIDER_ID_MAX
from domain.enums import ChannelKind
from infra.models import Contact, ContactIdentity
from services.contacts import (
    ContactChanges,
    ContactSearch,
    export_contacts,
    get_contact,
    identities_of,
    search_contacts,
    update_contact,
)
from services.errors import Invalid
from services.visibility import integration
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.paging import CursorQuery, IdPath, Limit, Page
from web.deps import SessionDep

router = APIRouter(prefix="/contacts", tags=["contacts"])


class ChatOut(BaseModel):
    inbox_id: int = Field(description="The inbox (bot) this chat is with.")
    reachable: bool = Field(description="False when the contact blocked or stopped this bot.")


class IdentityOut(BaseModel):
    channel: ChannelKind
    user_id: str = Field(description="The contact's id in that channel.")
    username: str | None
    reachable: bool = Field(
        description="False when the contact blocked or stopped every bot of this channel they wrote to."
    )
    chats: list[ChatOut] = Field(description="The contact's chat with each of our bots in this channel.")


class ContactOut(BaseModel):
    id: int
    display_name: str
    phone: str | None
    email: str | None
    region: str | None
    attributes: dict
    identities: list[IdentityOut]
    created_at: datetime


def contact_out(contact: Contact, identities: list[ContactIdentity]) -> ContactOut:
    return ContactOut(
        id=contact.id,
        display_name=contact.display_name,
        phone=contact.phone,
        email=contact.email,
        region=contact.region,
        attributes=contact.attributes,
        identities=[
            IdentityOut(
                channel=i.channel,
                user_id=i.provider_user_id,
                username=i.username,
                reachable=not i.chats or any(chat.reachable for chat in i.chats),
                chats=[ChatOut(inbox_id=chat.inbox_id, reachable=chat.reachable) for chat in i.chats],
            )
            for i in identities
        ],
        created_at=contact.created_at,
    )


@router.get("", summary="Search contacts")
async def search(
    token: TokenDep,
    db: SessionDep,
    phone: Annotated[str | None, Query(max_length=PHONE_MAX, description="Compared by its digits.")] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    channel: ChannelKind | None = None,
    channel_user_id: Annotated[
        str | None, Query(max_length=PROVIDER_ID_MAX, description="The contact's id in `channel`.")
    ] = None,
    limit: Limit = 50,
    cursor: CursorQuery = None,
) -> Page[ContactOut]:
    """Contacts with a conversation the token may see, matching every criterion given (at least
    one of phone, email, channel_user_id)."""
    if cursor is not None and not cursor.isdigit():
        raise Invalid("This cursor is not one a list gave out.")
    wanted = ContactSearch(phone=phone, email=email, channel=channel, channel_user_id=channel_user_id)
    contacts, following = await search_contacts(
        db, integration(token), wanted, after=int(cursor) if cursor else None, limit=limit
    )
    identities = await identities_of(db, [c.id for c in contacts])
    return Page(
        items=[contact_out(c, identities.get(c.id, [])) for c in contacts],
        next_cursor=None if following is None else str(following),
    )


EXPORT_COLUMNS = ["id", "display_name", "phone", "email", "region", "identities", "created_at"]


def _cell(value: object) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get(
    "/export",
    summary="Export contacts as CSV",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "UTF-8 CSV, a header row first."}
    },
)
async def export(request: Request, token: TokenDep) -> StreamingResponse:
    """Every contact the token may see: id, name, phone, e-mail, region, identities
    (`channel:user_id`, space-separated), created_at. Streamed, in id order."""
    viewer = integration(token)
    factory = request.app.state.sessionmaker

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        async with factory() as db:
            async for batch in export_contacts(db, viewer):
                identities = await identities_of(db, [c.id for c in batch])
                for c in batch:
                    known = " ".join(f"{i.channel.value}:{i.provider_user_id}" for i in identities.get(c.id, []))
                    writer.writerow(
                        [
                            _cell(v)
                            for v in (c.id, c.display_name, c.phone, c.email, c.region, known, c.created_at.isoformat())
                        ]
                    )
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue()

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


@router.get("/{contact_id:int}", summary="One contact")
async def get(contact_id: IdPath, token: TokenDep, db: SessionDep) -> ContactOut:
    return contact_out(*await get_contact(db, integration(token), contact_id))


@router.patch("/{contact_id:int}", summary="Change a contact", responses=WRITE_ERRORS)
async def update(contact_id: IdPath, changes: ContactChanges, token: WriterDep, db: SessionDep) -> ContactOut:
    """Fields left out stay as they are; null clears one (the name cannot be cleared)."""
    await update_contact(db, token, contact_id, changes)
    await db.commit()
    return contact_out(*await get_contact(db, integration(token), contact_id))
