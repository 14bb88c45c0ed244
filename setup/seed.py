"""First-start data: a default branch, a web-widget inbox and an admin. Idempotent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import ChannelKind, OperatorRole, OperatorStatus
from infra.models import Branch, Inbox, Operator
from infra.security import hash_password
from infra.settings import Settings


@dataclass
class SeedResult:
    created: bool
    admin_email: str
    # only when we generated it: printed once, never stored in clear
    generated_password: str | None = None


async def seed(factory: async_sessionmaker[AsyncSession], settings: Settings) -> SeedResult:
    async with factory() as db, db.begin():
        # one seeding process at a time (api replicas may start together)
        await db.execute(select(func.pg_advisory_xact_lock(0x5EED)))
        if await db.scalar(select(Operator.id).where(func.lower(Operator.email) == settings.admin_email.lower())):
            return SeedResult(created=False, admin_email=settings.admin_email)

        branch = await db.scalar(select(Branch).where(Branch.is_default))
        if branch is None:
            branch = Branch(name="Main branch", timezone="UTC", is_default=True)
            db.add(branch)
            await db.flush()
        if not await db.scalar(select(Inbox.id).where(Inbox.channel == ChannelKind.WIDGET).limit(1)):
            db.add(
                Inbox(
                    name="Website chat",
                    channel=ChannelKind.WIDGET,
                    settings={
                        "offline_text": "We are offline right now. Leave a message and we will answer "
                        "during working hours.",
                        "auto_reply": "",
                        "rating_mode": "stars",
                        "allowed_domains": ["localhost"],
                        "escalation_minutes": settings.default_escalation_minutes,
                    },
                )
            )
        generated = None
        if settings.admin_password is not None:
            password = settings.admin_password.get_secret_value()
        else:
            password = generated = secrets.token_urlsafe(12)
        db.add(
            Operator(
                email=settings.admin_email,
                display_name="Administrator",
                password_hash=hash_password(password),
                role=OperatorRole.ADMIN,
                branch_id=branch.id,
                status=OperatorStatus.OFFLINE,
            )
        )
    return SeedResult(created=True, admin_email=settings.admin_email, generated_password=generated)
