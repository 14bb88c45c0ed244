"""Files a website visitor sends (checked and stored by services/uploads.py): a message of
theirs, private, served only to that visitor (web/widget) and to staff.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.contracts import InboundKind
from domain.events import MessageChange, MessageUpdated
from infra.event_log import load_conversation_ids, publish
from infra.files import FileStore
from infra.models import Attachment, Message
from services import uploads
from services.errors import Forbidden
from services.ingest import ingest
from services.uploads import Checked
from services.widget_chat import client_message_key, visitor_event
from services.widget_sessions import VisitorSession, current_conversation


async def post_files(
    factory: async_sessionmaker[AsyncSession],
    file_store: FileStore,
    session: VisitorSession,
    client_id: str,
    files: list[Checked],
) -> int:
    """A message of the visitor's with these files, once per client id: a retry completes what
    an interrupted try left (the files of a message stored without them) and adds nothing twice."""
    stored = await uploads.store(file_store, files)
    event = visitor_event(session, InboundKind.MESSAGE, provider_message_id=client_message_key(session, client_id))
    result = await ingest(factory, event)
    async with factory() as db, db.begin():
        message = await db.scalar(
            select(Message)
            .where(Message.inbox_id == session.inbox_id, Message.provider_message_id == event.provider_message_id)
            .with_for_update()
        )
        assert message is not None and (result.message_id in (None, message.id))
        if await db.scalar(select(Attachment.id).where(Attachment.message_id == message.id).limit(1)) is not None:
            return message.id
        now = datetime.now(UTC)
        db.add_all(saved.row(message.id, now) for saved in stored)
        ref = await load_conversation_ids(db, message.conversation_id)
        await publish(db, MessageUpdated.of(ref, message_id=message.id, change=MessageChange.ATTACHMENTS))
        return message.id


async def visitor_file(db: AsyncSession, session: VisitorSession, attachment_id: int) -> Attachment:
    """A stored file of the visitor's own conversation; Forbidden for any other id."""
    conversation = await current_conversation(db, session)
    if conversation is None:
        raise Forbidden()
    attachment = await db.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(
            Attachment.id == attachment_id,
            Message.conversation_id == conversation.id,
            Message.is_note.is_(False),
            Attachment.sha256.is_not(None),
        )
    )
    if attachment is None:
        raise Forbidden()
    return attachment
