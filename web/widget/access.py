"""Who may call the widget's API, and how often: the visitor's token, the inbox's allowed sites,
the visitor's address (X-Forwarded-For only from TRUSTED_PROXIES) and the request budgets.

Every refusal is problem+json: 401 for a token that is missing, forged or expired; 403 for a
page on a site the inbox does not allow; 404 for an inbox that is not a live widget; 429 with
Retry-After past a budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.datastructures import Headers

from infra import ratelimit
from infra.models import Inbox
from infra.settings import Settings
from services.widget_identity import anonymous
from services.widget_sessions import VisitorSession, signing_key, verify, widget_inbox
from web.problems import RATE_LIMITED, ApiError

FOREIGN_SITE = "urn:switchboard:problem:widget-foreign-site"


@dataclass(frozen=True, slots=True)
class Budget:
    rate: float  # requests a second on average
    burst: int  # at once


# What a stranger may do (per address) and what one visitor may do, in the range peers use.
BUDGETS = {
    "session": Budget(10 / 3600, 10),  # new visitors per address: 10 at once, then one every 6 min
    "session-free": Budget(3 / 3600, 3),  # of those, without solving a challenge
    "challenge": Budget(1 / 3600, 1),  # a solved challenge is taken once (it expires sooner)
    "send-ip": Budget(2.0, 60),
    "send": Budget(1.0, 20),  # per visitor
    "upload": Budget(0.2, 10),  # per visitor
    "typing": Budget(0.5, 5),  # per visitor (the widget sends one every 3 s while typing)
    "read": Budget(5.0, 100),  # polls, history, acknowledgements per visitor
}


def too_many(wait: timedelta) -> ApiError:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return ApiError(
        429, f"Too many requests: try again in {seconds} s.", type=RATE_LIMITED, headers={"Retry-After": str(seconds)}
    )


async def spend(request: Request, budget: str, subject: str) -> timedelta | None:
    """Count one request of `budget` for `subject` (an address or a visitor): None when admitted."""
    limit = BUDGETS[budget]
    async with request.app.state.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await ratelimit.admit(conn, f"widget:{budget}:{subject}", limit.rate, limit.burst)


async def require(request: Request, budget: str, subject: str) -> None:
    wait = await spend(request, budget, subject)
    if wait is not None:
        raise too_many(wait)


def client_address(request: Request, settings: Settings) -> str:
    """The visitor's address: the peer's, or, when the peer is a trusted proxy, the first
    address in X-Forwarded-For (from the right) that is not one of ours."""
    peer = request.client.host if request.client else "unknown"
    if not settings.trusted_proxies or not _trusted(peer, settings):
        return peer
    hops = [hop.strip() for hop in request.headers.get("x-forwarded-for", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, settings):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # a garbled header: the proxy's own address is all we know
    return peer


def _trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_proxies)


def site_of(headers: Headers) -> str | None:
    """The origin a request comes from: its Origin header, else its Referer's origin."""
    origin = headers.get("origin")
    if origin and origin != "null":
        return origin.lower()
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}".lower()
    return None


def host_allowed(host: str, allowed: list[str]) -> bool:
    """`allowed` as the inbox's settings keep it: host names, `*.example.com` for subdomains
    (and example.com itself). An empty list lets the chat run on any site."""
    if not allowed:
        return True
    for pattern in allowed:
        if pattern.startswith("*."):
            if host == pattern[2:] or host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def own_origins(request: Request) -> set[str]:
    """Where our chat frame is served from: PUBLIC_URL (behind a TLS proxy the request itself
    may look like plain http) and the address this request came to."""
    public = urlsplit(request.app.state.settings.public_url)
    return {f"{public.scheme}://{public.netloc}".lower(), f"{request.url.scheme}://{request.url.netloc}".lower()}


def check_site(request: Request, inbox: Inbox) -> None:
    """The request comes from our own chat frame, or from a site the inbox allows."""
    site = site_of(request.headers)
    if site is not None and site in own_origins(request):
        return
    host = urlsplit(site).hostname if site else None
    if host is None or not host_allowed(host, list((inbox.settings or {}).get("allowed_domains") or [])):
        raise ApiError(403, "This site may not use this chat.", type=FOREIGN_SITE)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.query_params.get("token")  # EventSource cannot send headers


@dataclass(frozen=True, slots=True)
class Visit:
    session: VisitorSession
    inbox: Inbox
    address: str


async def visit(request: Request) -> Visit:
    """The caller's visitor session in a live widget inbox, from an allowed site."""
    settings: Settings = request.app.state.settings
    session = verify(signing_key(settings), bearer(request))
    if session is None:
        raise ApiError(401, "The chat session is missing or has expired: start a new one.")
    async with request.app.state.sessionmaker() as db:
        inbox = await widget_inbox(db, session.inbox_id)
    if inbox is None or ((inbox.settings or {}).get("identity_required") and anonymous(session.visitor_id)):
        raise ApiError(401, "The chat session is missing or has expired: start a new one.")
    check_site(request, inbox)
    return Visit(session, inbox, client_address(request, settings))


VisitDep = Annotated[Visit, Depends(visit)]
