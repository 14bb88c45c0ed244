"""What a service refuses, for pages, the API and webhooks to answer in their own way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

UNIQUE_VIOLATION = "23505"


class Forbidden(Exception):
    """The caller may not touch this object (answered 404 so ids are not probed)."""


class Invalid(ValueError):
    """A request that cannot be carried out, with a message for the user: a msgid (marked with
    `domain.wording.N_`) and its %(name)s parameters; `field` names the form field it is about;
    `code` names the kind of refusal for API clients."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params


class ContactUnreachable(Invalid):
    """The contact blocked or stopped the conversation's bot, or deleted their account: nothing
    sent through this inbox reaches them until they start it again."""

    code = "contact_unreachable"


@asynccontextmanager
async def unique_or_invalid(db: AsyncSession, message: str, *, field: str) -> AsyncIterator[None]:
    """Changes made inside are flushed in a savepoint; a unique constraint they break becomes
    `Invalid(message, field=field)` (checking first would still race a concurrent writer)."""
    try:
        async with db.begin_nested():
            yield
            await db.flush()
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        raise Invalid(message, field=field) from None
