"""Who calls the REST API: an integrator's token in `Authorization: Bearer sb_...`, never a
cabinet session (cookies are not read here), with the token's request budget.

Every route of the API takes `TokenDep` (through the router) and, to change anything,
`WriterDep`; ids go through `ConversationDep` and the services' visibility predicate.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra import ratelimit
from infra.models import ApiToken
from services.api_tokens import authenticate
from web.problems import RATE_LIMITED, READ_ONLY_TOKEN, ApiError

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token an admin created (Settings -> API tokens): `Authorization: Bearer sb_...`.",
)
# Failed authentications per client address (API_AUTH_FAILURE_BURST at once): a stranger's
# flood is told to wait, and costs one lookup a second once its burst is spent.
FAILURES_PER_SECOND = 1.0


def _too_many(wait: timedelta) -> ApiError:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return ApiError(
        429,
        f"Too many requests: try again in {seconds} s.",
        type=RATE_LIMITED,
        headers={"Retry-After": str(seconds)},
    )


async def api_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> ApiToken:
    """The caller's live token, after its request budget admitted this request. Two statements
    in autocommit, apart from the route's own transaction: the budget's row is locked only for
    the moment its statement runs."""
    settings = request.app.state.settings
    async with request.app.state.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        token = await authenticate(conn, credentials.credentials) if credentials else None
        if token is None:
            address = request.client.host if request.client else "unknown"
            burst = settings.api_auth_failure_burst
            wait = await ratelimit.admit(conn, f"api-auth:{address}", FAILURES_PER_SECOND, burst)
            if wait is not None:
                raise _too_many(wait)
            raise ApiError(
                401,
                "A valid API token is required: Authorization: Bearer sb_...",
                headers={"WWW-Authenticate": "Bearer"},
            )
        wait = await ratelimit.admit(conn, f"api:{token.id}", settings.api_rate_per_second, settings.api_rate_burst)
    if wait is not None:
        raise _too_many(wait)
    return token


TokenDep = Annotated[ApiToken, Depends(api_token)]


async def writer(token: TokenDep) -> ApiToken:
    """A read-write token; a read-only one is refused before anything happens."""
    if not token.can_write:
        raise ApiError(403, "This token is read-only.", type=READ_ONLY_TOKEN)
    return token


WriterDep = Annotated[ApiToken, Depends(writer)]
