"""A conversation's page, `/conversations/{id}`: the inbox beside the contact's thread, the
composer and the contact panel.

Every route loads the conversation through `ConversationDep` (404 for an id that is not the
caller's). Messages are drawn only by `partials/_message.html`: the page's newest page, older
pages on scroll (`?before=`), and one message by id for live updates.
"""

from __future__ import annotations

import asyncio
import html
import mimetypes
import secrets
from dataclasses import dataclass, replace
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.text import render as render_text
from domain.enums import ChannelKind, DeliveryStatus, MessageFormat
from domain.visibility import Access, access
from infra.files import FileStore
from infra.models import (
    Attachment,
    Bitrix24Task,
    Branch,
    Contact,
    ContactChat,
    ContactIdentity,
    Conversation,
    Inbox,
    Label,
    Message,
    Operator,
)
from services import bitrix24, labels as label_service
from services.conversation_list import ConversationFilter, conversation_row, list_conversations
from services.errors import Forbidden
from services.inbox import TransferTarget, look_at, transfer_targets, unread_conversations
from services.messages import HistoryPage, attachment_in, contact_history
from services.operators import is_supervisor
from services.uploads import Limits
from services.visibility import placement, staff
from web.cabinet.inbox import ListQuery, RowView, inbox_list, row_views
from web.deps import ConversationDep, PageDep, SessionDep
from web.templating import NavCounts, PageContext, is_fragment_request, render
from web.uploads import composer_limits

router = APIRouter(prefix="/conversations/{conversation_id}")

HISTORY_PAGE = 50
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class MessageView:
    """What `partials/_message.html` draws for one message."""

    m: Message
    html: str  # the text as the channel shows it (channels/text.py)
    attachments: list[Attachment]
    original: str | None  # an edited message's first text
    sender: str | None  # the operator who wrote it
    channel: ChannelKind | None
    inbox_name: str
    elsewhere: bool  # from another conversation of the contact
    retry: bool  # failed, and the viewer may send it again from here


@dataclass(frozen=True, slots=True)
class RetryRights:
    """Who sees a failed message's Retry: supervisors everywhere (the dead-letter list's rights),
    others in the conversation they may act in."""

    here: bool
    anywhere: bool

    @classmethod
    def of(cls, operator: Operator, conversation: Conversation) -> RetryRights:
        writable = access(staff(operator), placement(conversation)) == Access.WRITE
        return cls(here=writable, anywhere=is_supervisor(operator))


def message_views(
    history: HistoryPage, inboxes: dict[int, Inbox], current: int, rights: RetryRights
) -> list[MessageView]:
    return [
        MessageView(
            m,
            render_text(m.text, m.format) if m.format == MessageFormat.MARKDOWN else _plain(m.text),
            history.attachments.get(m.id, []),
            history.originals.get(m.id),
            history.senders.get(m.sender_operator_id) if m.sender_operator_id else None,
            inboxes[m.inbox_id].channel if m.inbox_id in inboxes else None,
            inboxes[m.inbox_id].name if m.inbox_id in inboxes else "",
            m.conversation_id != current,
            m.delivery_status == DeliveryStatus.FAILED
            and not m.is_note
            and m.discarded_at is None
            and (rights.anywhere or (rights.here and m.conversation_id == current)),
        )
        for m in history.messages
    ]


def _plain(text: str) -> str:
    return html.escape(text, quote=False)


async def _inboxes(db: AsyncSession, messages: list[Message]) -> dict[int, Inbox]:
    ids = {m.inbox_id for m in messages}
    if not ids:
        return {}
    return {inbox.id: inbox for inbox in await db.scalars(select(Inbox).where(Inbox.id.in_(ids)))}


@dataclass(frozen=True, slots=True)
class Reachability:
    identity: ContactIdentity
    chat: ContactChat
    inbox: Inbox


@dataclass(frozen=True)
class ThreadView:
    """Everything the conversation's part of the page draws."""

    conversation: Conversation
    row: RowView
    contact: Contact
    inbox: Inbox
    branch: Branch | None
    reachability: list[Reachability]
    reachable: bool  # the conversation's own chat can receive a reply
    past: list[RowView]
    messages: list[MessageView]
    older: int | None
    read_only: bool
    tags: list[Label]
    all_labels: list[Label]
    targets: list[TransferTarget]
    branches: list[Branch]
    b24_connected: bool
    b24_task: Bitrix24Task | None
    idempotency_key: str
    file_limits: Limits  # what the composer takes (web/uploads.py)


async def thread_view(db: AsyncSession, page: PageContext, conversation: Conversation, read_only: bool) -> ThreadView:
    operator = page.operator
    assert operator is not None
    viewer = staff(operator)
    contact = await db.get(Contact, conversation.contact_id)
    inbox = await db.get(Inbox, conversation.inbox_id)
    branch = await db.get(Branch, conversation.branch_id) if conversation.branch_id else None
    chats = await db.execute(
        select(ContactIdentity, ContactChat, Inbox)
        .join(ContactChat, ContactChat.identity_id == ContactIdentity.id)
        .join(Inbox, Inbox.id == ContactChat.inbox_id)
        .where(ContactIdentity.contact_id == conversation.contact_id)
        .order_by(ContactIdentity.channel, Inbox.name)
    )
    reachability = [Reachability(identity, chat, chat_inbox) for identity, chat, chat_inbox in chats]
    reachable = all(
        r.chat.reachable
        for r in reachability
        if r.identity.id == conversation.identity_id and r.inbox.id == conversation.inbox_id
    )
    past_rows, _ = await list_conversations(db, viewer, ConversationFilter(contact_id=contact.id), limit=10)
    current = next((r for r in past_rows if r.id == conversation.id), None)
    if current is None:  # not among the contact's ten latest
        current = await conversation_row(db, viewer, conversation.id)
    # its own row and the past ones: their extras and labels in one go
    row, *past = await row_views(
        db, operator, [current, *(r for r in past_rows if r.id != conversation.id)], conversation.id
    )
    history = await contact_history(db, viewer, conversation, limit=HISTORY_PAGE)
    inboxes = await _inboxes(db, history.messages)
    return ThreadView(
        conversation=conversation,
        row=row,
        contact=contact,
        inbox=inbox,
        branch=branch,
        reachability=reachability,
        reachable=reachable,
        past=past,
        messages=message_views(history, inboxes, conversation.id, RetryRights.of(operator, conversation)),
        older=history.older,
        read_only=read_only,
        tags=row.tags,
        all_labels=await label_service.list_labels(db),
        targets=await transfer_targets(db),
        branches=list((await db.scalars(select(Branch).order_by(Branch.name))).all()),
        b24_connected=await bitrix24.connection_for(db, conversation) is not None,
        b24_task=await bitrix24.task_of(db, conversation.id),
        idempotency_key=new_draft_key(),
        file_limits=composer_limits(page.request.app.state.settings, inbox),
    )


def new_draft_key() -> str:
    """The composer's key for one draft: a resubmitted or double-clicked form sends once."""
    return secrets.token_urlsafe(16)


async def workspace(db: AsyncSession, page: PageContext, conversation: Conversation) -> dict:
    """The conversation's part of the page; the whole inbox beside it only for a whole page (an
    HTMX request for the conversation's part needs only the list's query, for its links)."""
    operator = page.operator
    assert operator is not None
    look = await look_at(db, operator, conversation)
    await db.commit()
    thread = await thread_view(db, page, conversation, look.read_only)
    params = dict(page.request.query_params)
    settings = page.request.app.state.settings
    context = {
        "read_moved": look.read,
        "thread": thread,
        "list_query": ListQuery.read(params, operator),
        "temporal_ui": (settings.temporal_ui_url or "").rstrip("/"),
        "temporal_namespace": settings.temporal_namespace,
    }
    if not is_fragment_request(page.request):
        context["inbox"] = await inbox_list(db, page, params, selected=conversation.id)
    return context


@router.get("", response_class=HTMLResponse, name="conversation")
async def conversation_page(page: PageDep, db: SessionDep, conversation: ConversationDep) -> HTMLResponse:
    """The whole workspace with this conversation open or, for HTMX (a row clicked), only the
    conversation's part, its row and the badge (reading it changed both)."""
    context = await workspace(db, page, conversation)
    if context["read_moved"]:  # the badge was counted before this read
        page = _recounted(page, await unread_conversations(db, page.operator))
    return render(page, "cabinet/inbox.html", context, block="thread", oob=["aside", "current_row", "badge"])


def _recounted(page: PageContext, unread: int) -> PageContext:
    return replace(page, counts=NavCounts(unread=unread))


@router.get("/messages", response_class=HTMLResponse)
async def older_messages(
    page: PageDep,
    db: SessionDep,
    conversation: ConversationDep,
    before: Annotated[int, Query(gt=0, lt=2**63)],
) -> HTMLResponse:
    """An older page of the contact's history (scrolling up), above the messages shown."""
    operator = page.operator
    assert operator is not None
    history = await contact_history(db, staff(operator), conversation, before=before, limit=HISTORY_PAGE)
    rights = RetryRights.of(operator, conversation)
    views = message_views(history, await _inboxes(db, history.messages), conversation.id, rights)
    return render(
        page,
        "cabinet/messages.html",
        {"messages": views, "older": history.older, "conversation": conversation},
    )


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def one_message(
    page: PageDep, db: SessionDep, conversation: ConversationDep, message_id: Annotated[int, ...]
) -> HTMLResponse:
    """One message as the thread draws it (a live update: new, edited, its ticks)."""
    operator = page.operator
    assert operator is not None
    if not 0 < message_id < 2**63:
        raise Forbidden()
    history = await contact_history(db, staff(operator), conversation, before=message_id + 1, limit=1)
    if not history.messages or history.messages[0].id != message_id:
        raise Forbidden()
    rights = RetryRights.of(operator, conversation)
    (view,) = message_views(history, await _inboxes(db, history.messages), conversation.id, rights)
    return render(page, "partials/_message.html", {"mv": view})


@router.get("/attachments/{attachment_id}")
async def attachment(
    page: PageDep, db: SessionDep, conversation: ConversationDep, attachment_id: int, download: bool = False
) -> Response:
    """A file of one of the conversation's messages, from the file store by its digest (never a
    path from the client). Images are shown inline; anything else is a download."""
    if not 0 < attachment_id < 2**63:
        raise Forbidden()
    found = await attachment_in(db, conversation, attachment_id)
    store = FileStore.from_settings(page.request.app.state.settings)
    try:
        content = await asyncio.to_thread(store.read, found.sha256)
    except FileNotFoundError:
        raise Forbidden() from None
    inline = found.mime_type in INLINE_IMAGES and not download
    name = found.file_name or f"file-{found.id}{mimetypes.guess_extension(found.mime_type) or ''}"
    disposition = "inline" if inline else "attachment"
    return Response(
        content,
        media_type=found.mime_type if inline else "application/octet-stream",
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
