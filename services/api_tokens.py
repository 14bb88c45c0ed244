"""Integrators' REST API tokens: created by an admin and shown once, scoped to branches or all,
read-only or read-write, revocable; the API finds its caller here.

A token is `sb_` and 32 random bytes (infra/security.py); only its SHA-256 is stored, so the
table can leak without leaking a live token, and lookups are one unique-index probe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.wording import N_
from infra.models import ApiToken, Branch, Operator
from infra.security import API_TOKEN_PREFIX, new_api_token, token_digest
from services import audit
from services.errors import Forbidden, Invalid
from services.operators import require_admin

NAME_MAX = 100
# what an admin sees of a token after it was shown: enough to tell two apart
HINT_LENGTH = len(API_TOKEN_PREFIX) + 4


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


async def create_token(
    db: AsyncSession, actor: Operator | None, *, name: str, branch_ids: Iterable[int] | None, can_write: bool
) -> IssuedToken:
    """A new token; `branch_ids` None sees every branch. `actor` None: the admin CLI."""
    if actor is not None:
        require_admin(actor)
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise Invalid(N_("Give the token a name of 1 to %(max)s characters."), field="name", max=NAME_MAX)
    branches = None
    if branch_ids is not None:
        branches = sorted(set(branch_ids))
        if not branches:
            raise Invalid(N_("Choose at least one branch, or all branches."), field="branch")
        known = set((await db.scalars(select(Branch.id).where(Branch.id.in_(branches)))).all())
        if missing := sorted(set(branches) - known):
            raise Invalid(N_("No such branch: %(ids)s."), field="branch", ids=", ".join(map(str, missing)))
    secret = new_api_token()
    token = ApiToken(
        name=name,
        token_hash=token_digest(secret),
        hint=secret[:HINT_LENGTH],
        branch_ids=branches,
        can_write=can_write,
        created_by_operator_id=actor.id if actor else None,
    )
    db.add(token)
    await db.flush()
    audit.record(
        db,
        "api_token.created",
        operator_id=actor.id if actor else None,
        details={"token_id": token.id, "name": name, "branch_ids": branches, "can_write": can_write},
    )
    return IssuedToken(token, secret)


async def revoke_token(db: AsyncSession, actor: Operator | None, token_id: int) -> ApiToken:
    """At once: the next request with it is refused. Revoking twice changes nothing."""
    if actor is not None:
        require_admin(actor)
    token = await db.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise Forbidden()
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        audit.record(db, "api_token.revoked", operator_id=actor.id if actor else None, details={"token_id": token.id})
    return token


async def list_tokens(db: AsyncSession, actor: Operator) -> list[ApiToken]:
    require_admin(actor)
    return list((await db.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.id))).all())


# One statement, run on every API request: find the live token and note its use, at most once a
# minute (every request of a busy token writing the same row would queue on its lock).
_AUTHENTICATE = text(
    """
    WITH token AS (
        SELECT id, name, hint, branch_ids, can_write, created_at, last_used_at FROM api_tokens
        WHERE token_hash = :digest AND revoked_at IS NULL),
    touched AS (
        UPDATE api_tokens SET last_used_at = now() FROM token
        WHERE api_tokens.id = token.id
          AND (token.last_used_at IS NULL OR token.last_used_at < now() - interval '1 minute'))
    SELECT id, name, hint, branch_ids, can_write, created_at, last_used_at FROM token
    """
)


async def authenticate(db: AsyncSession | AsyncConnection, secret: str) -> ApiToken | None:
    """The live token with this secret, or None (unknown, malformed or revoked). The token is a
    detached row: callers read it, nobody changes it through it."""
    if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 200:
        return None
    row = (await db.execute(_AUTHENTICATE, {"digest": token_digest(secret)})).first()
    return None if row is None else ApiToken(**row._mapping)
