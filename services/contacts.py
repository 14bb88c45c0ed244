"""Contacts as staff and integrators read and change them: one contact with its channel
identities, a search by phone, e-mail or a channel's user id, an export, and an update.

A caller sees a contact when it may see one of the contact's conversations
(services.visibility.contact_visible_to); lists are keyset-paginated on the id.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from domain.contracts import DISPLAY_NAME_MAX, PHONE_MAX, PROVIDER_ID_MAX, REGION_MAX
from domain.enums import ChannelKind
from domain.events import ContactUpdated
from domain.visibility import Integration, Viewer
from infra.event_log import conversation_ids, publish
from infra.models import Contact, ContactIdentity, Conversation
from services import audit
from services.errors import Forbidden, Invalid
from services.visibility import Caller, contact_visible_to, viewer_of

MAX_PAGE = 200
EXPORT_BATCH = 500


class ContactSearch(BaseModel):
    """At least one of: a phone (its digits are compared), an e-mail (case-insensitive), or a
    channel with the user id that channel knows the contact by."""

    phone: str | None = Field(None, max_length=PHONE_MAX)
    email: str | None = Field(None, max_length=320)
    channel: ChannelKind | None = None
    channel_user_id: str | None = Field(None, max_length=PROVIDER_ID_MAX)


class ContactChanges(BaseModel):
    """What an update may set; a field left out stays as it is, null clears it."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=DISPLAY_NAME_MAX)
    phone: str | None = Field(None, max_length=PHONE_MAX)
    email: str | None = Field(None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    region: str | None = Field(None, max_length=REGION_MAX)
    attributes: dict[str, Any] | None = Field(None, description="Replaces the contact's attributes as a whole.")


async def get_contact(db: AsyncSession, viewer: Viewer, contact_id: int) -> tuple[Contact, list[ContactIdentity]]:
    contact = await db.scalar(select(Contact).where(Contact.id == contact_id, contact_visible_to(viewer)))
    if contact is None:
        raise Forbidden()
    identities = await db.scalars(
        select(ContactIdentity)
        .where(ContactIdentity.contact_id == contact.id)
        .options(selectinload(ContactIdentity.chats))
        .order_by(ContactIdentity.id)
    )
    return contact, list(identities.all())


async def identities_of(db: AsyncSession, contact_ids: list[int]) -> dict[int, list[ContactIdentity]]:
    found: dict[int, list[ContactIdentity]] = {}
    if contact_ids:
        rows = await db.scalars(
            select(ContactIdentity)
            .where(ContactIdentity.contact_id.in_(contact_ids))
            .options(selectinload(ContactIdentity.chats))
            .order_by(ContactIdentity.id)
        )
        for identity in rows:
            found.setdefault(identity.contact_id, []).append(identity)
    return found


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


async def search_contacts(
    db: AsyncSession, viewer: Viewer, wanted: ContactSearch, *, after: int | None = None, limit: int = 50
) -> tuple[list[Contact], int | None]:
    """A page of matching contacts by id, and the id to continue after (None: last page)."""
    query = select(Contact).where(contact_visible_to(viewer))
    if not (wanted.phone or wanted.email or wanted.channel_user_id):
        raise Invalid("Search by phone, e-mail or a channel's user id.")
    if wanted.phone:
        if not (digits := _digits(wanted.phone)):
            raise Invalid("A phone to search for needs digits.")
        query = query.where(func.regexp_replace(Contact.phone, r"\D", "", "g") == digits)
    if wanted.email:
        query = query.where(func.lower(Contact.email) == wanted.email.strip().lower())
    if wanted.channel_user_id:
        identity = select(ContactIdentity.id).where(
            ContactIdentity.contact_id == Contact.id, ContactIdentity.provider_user_id == wanted.channel_user_id
        )
        if wanted.channel is not None:
            identity = identity.where(ContactIdentity.channel == wanted.channel)
        query = query.where(identity.exists())
    elif wanted.channel is not None:
        raise Invalid("A channel is searched together with the user id it knows the contact by.")
    return await _page(db, query, after, limit)


async def _page(db: AsyncSession, query: Any, after: int | None, limit: int) -> tuple[list[Contact], int | None]:
    limit = max(1, min(limit, MAX_PAGE))
    if after is not None:
        query = query.where(Contact.id > after)
    contacts = list((await db.scalars(query.order_by(Contact.id).limit(limit + 1))).all())
    if len(contacts) <= limit:
        return contacts, None
    return contacts[:limit], contacts[limit - 1].id


async def export_contacts(db: AsyncSession, viewer: Viewer) -> AsyncIterator[list[Contact]]:
    """Every contact `viewer` may see, in batches by id (keyset: memory stays flat)."""
    after = None
    while True:
        batch, after = await _page(db, select(Contact).where(contact_visible_to(viewer)), after, EXPORT_BATCH)
        if batch:
            yield batch
        if after is None:
            return


async def update_contact(db: AsyncSession, caller: Caller, contact_id: int, changes: ContactChanges) -> Contact:
    """Set the fields `changes` names; audited, and announced as contact.updated. A token must be
    read-write."""
    viewer = viewer_of(caller)
    contact = await db.scalar(
        select(Contact).where(Contact.id == contact_id, contact_visible_to(viewer)).with_for_update()
    )
    if contact is None:
        raise Forbidden()
    if isinstance(viewer, Integration) and not viewer.writes:
        raise Invalid("This token is read-only.")
    wanted = changes.model_dump(exclude_unset=True)
    if "attributes" in wanted and wanted["attributes"] is None:
        wanted["attributes"] = {}  # cleared
    if "display_name" in wanted and not (wanted["display_name"] or "").strip():
        raise Invalid("A contact's name cannot be empty.")
    changed = {name: value for name, value in wanted.items() if getattr(contact, name) != value}
    if not changed:
        return contact
    for name, value in changed.items():
        setattr(contact, name, value if name != "display_name" else value.strip())
    audit.record(
        db,
        "contact.updated",
        **audit.by(caller),
        details={"contact_id": contact.id, "fields": sorted(changed)},  # the values stay out of the log
    )
    latest = await db.scalar(
        select(Conversation).where(Conversation.contact_id == contact.id).order_by(Conversation.id.desc()).limit(1)
    )
    if latest is not None:  # announced where the contact is shown: its latest conversation
        await publish(db, ContactUpdated.of(conversation_ids(latest), contact_id=contact.id, fields=sorted(changed)))
    return contact
