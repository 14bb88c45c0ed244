"""A small world for the masters' workspace over real HTTP: a branch with two operators (Ann and
Bob), a second branch with Carl, a supervisor, a Telegram inbox and customers written in through
the real ingest path."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy import select, update

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind, OperatorRole
from infra.models import Branch, Conversation, Inbox
from infra.security import CredentialBox
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.telegram import TOKEN as FAKE_TELEGRAM_TOKEN
from tests.integration.settings_support import add_staff, sign_in

_ids = count(1)


@dataclass
class Team:
    factory: object
    base_url: str
    branch_id: int
    other_branch_id: int
    inbox_id: int
    ann: int
    bob: int
    carl: int
    boss: int

    async def client(self, who: str):
        return await sign_in(self.base_url, f"{who}@example.com")

    async def customer_writes(
        self, name: str, text: str = "Добрый день!", *, assignee: int | None = None, branch_id: int | None = None,
        age: timedelta = timedelta(0), username: str | None = None,
    ) -> int:  # fmt: skip
        """A customer's message through ingest; the conversation placed as asked."""
        chat = str(zlib.crc32(name.encode()))
        event = InboundEvent(
            inbox_id=self.inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.MESSAGE,
            provider_user_id=chat,
            provider_chat_id=chat,
            provider_message_id=f"{chat}:{next(_ids)}",
            provider_time=datetime.now(UTC) - age,
            text=text,
            profile=ContactProfile(display_name=name, username=username),
        )
        conversation_id = (await ingest(self.factory, event)).conversation_id
        async with self.factory() as db, db.begin():
            await db.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(
                    branch_id=branch_id or self.branch_id,
                    assignee_id=assignee,
                    last_activity_at=datetime.now(UTC) - age,
                )
            )
        return conversation_id


async def make_team(clean_db, live_api) -> Team:
    async with clean_db() as db, db.begin():
        branch_id = await db.scalar(select(Branch.id).where(Branch.is_default))
        other = Branch(name=f"Урал {next(_ids)}", timezone="Asia/Yekaterinburg")
        inbox = Inbox(
            name="Магазин",
            channel=ChannelKind.TELEGRAM,
            bot_name="Магазин",
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(
                {"token": FAKE_TELEGRAM_TOKEN, "webhook_secret": "s3cret-webhook_token"}
            ),
        )
        db.add_all([other, inbox])
        await db.flush()
        other_id, inbox_id = other.id, inbox.id
    ann = await add_staff(clean_db, OperatorRole.OPERATOR, "ann@example.com", "Анна")
    bob = await add_staff(clean_db, OperatorRole.OPERATOR, "bob@example.com", "Борис")
    carl = await add_staff(clean_db, OperatorRole.OPERATOR, "carl@example.com", "Карл", other_id)
    boss = await add_staff(clean_db, OperatorRole.SUPERVISOR, "boss@example.com", "Вера")
    return Team(clean_db, live_api.url, branch_id, other_id, inbox_id, ann, bob, carl, boss)
