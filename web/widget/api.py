"""The widget's JSON API under /widget/v1, called by the chat frame's script (web/static/widget/).

A visitor starts (or renews) a session for an inbox and gets a signed token; every other call
carries it (`Authorization: Bearer`, or `?token=` where a header cannot be set) and reaches only
the visitor's own conversation.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from domain.contracts import ContactProfile
from domain.enums import ConversationStatus, RatingMode
from infra.files import FileStore
from infra.models import Inbox
from services import uploads, widget_captcha, widget_chat, widget_files
from services.widget_context import (
    EMAIL,
    PHONE,
    ContextIn,
    missing_details,
    offline_state,
    prechat_fields,
    update_context,
)
from services.widget_identity import USER_ID_MAX, anonymous, identified_visitor, identity_secret
from services.widget_sessions import current_conversation, issue, new_visitor_id, signing_key, verify, widget_inbox
from web.deps import SessionDep
from web.problems import ApiError, problem
from web.uploads import read_files
from web.widget.access import VisitDep, check_site, client_address, require, spend

PREFIX = "/widget/v1"
CHALLENGE = "urn:switchboard:problem:widget-challenge"
IDENTITY = "urn:switchboard:problem:widget-identity"
router = APIRouter(prefix=PREFIX, include_in_schema=False)

TEXT_MAX = 4000
CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
ClientId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def widget_config(inbox: Inbox) -> dict[str, Any]:
    """What the chat frame needs to know about its inbox (nothing secret)."""
    s = inbox.settings or {}
    return {
        "sse": (s.get("features") or {}).get("sse", True),
        "rating_mode": s.get("rating_mode") or RatingMode.NONE.value,
        "attachment_max_bytes": s.get("attachment_max_bytes") or uploads.DEFAULT_MAX_BYTES,
        "attachment_max_count": s.get("attachment_max_count") or uploads.DEFAULT_MAX_COUNT,
        "texts": s.get("widget_texts") or {},  # the inbox's own words per language
    }


class SignedUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=USER_ID_MAX)
    hash: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(default=None, max_length=400, description="The visitor's token, to renew it.")
    captcha: str | None = Field(default=None, max_length=2000, description="A solved proof-of-work challenge.")
    user: SignedUser | None = Field(default=None, description="The site's signed-in user (the identity check).")


@router.post("/inboxes/{inbox_id:int}/sessions", status_code=201)
async def start_session(inbox_id: int, body: SessionIn, request: Request, db: SessionDep) -> Any:
    """A new visitor, or the same visitor again with a new expiry when their token is live."""
    settings = request.app.state.settings
    inbox = await widget_inbox(db, inbox_id)
    if inbox is None:
        raise ApiError(404, "There is no such chat.")
    check_site(request, inbox)
    key = signing_key(settings)
    known = verify(key, body.token)
    address = client_address(request, settings)
    required = bool((inbox.settings or {}).get("identity_required"))
    if body.user is not None:
        secret = identity_secret(request.app.state.credential_box, inbox)
        visitor_id = identified_visitor(secret, inbox.id, body.user.id, body.user.hash)
        if visitor_id is None:
            raise ApiError(403, "The user's signature does not hold.", type=IDENTITY)
        await require(request, "read", visitor_id)
    elif required and (known is None or known.inbox_id != inbox.id or anonymous(known.visitor_id)):
        raise ApiError(403, "This chat is for the site's signed-in users.", type=IDENTITY)
    elif known is not None and known.inbox_id == inbox.id:
        await require(request, "read", known.visitor_id)
        visitor_id = known.visitor_id
    else:
        if await spend(request, "session-free", address) is not None:
            # past the free sessions of an address: a solved challenge, each taken once
            solved = _proof_of_work(key, body.captcha)
            if solved is None or await spend(request, "challenge", solved) is not None:
                return _challenge(key)
        await require(request, "session", address)
        visitor_id = new_visitor_id()
    token, session = issue(key, inbox.id, visitor_id, timedelta(days=settings.widget_session_days))
    conversation = await current_conversation(db, session)
    offline = await offline_state(db, inbox, region_of(request, address))
    config = widget_config(inbox) | {"offline": offline, "prechat": prechat_fields(inbox, offline is not None)}
    return {
        "token": token,
        "expires_at": session.expires_at.isoformat(),
        "config": config,
        "conversation": widget_chat.conversation_out(conversation, inbox),
    }


def _proof_of_work(key: bytes, payload: str | None) -> str | None:
    """The challenge a solution solved, or None (then a new challenge is answered)."""
    return widget_captcha.solved(widget_captcha.challenge_key(key), payload)


def _challenge(key: bytes) -> Response:
    return problem(
        403,
        "Forbidden",
        "Solve the challenge to start a chat.",
        type=CHALLENGE,
        challenge=widget_captcha.new_challenge(widget_captcha.challenge_key(key)),
    )


def region_of(request: Request, address: str) -> str | None:
    """The visitor's region by their address (GeoIP), for branch routing; None when unknown."""
    resolver = request.app.state.region_resolver
    return resolver.region_for(address) if resolver is not None else None


@router.get("/chat")
async def chat(visit: VisitDep, request: Request, db: SessionDep, after: Annotated[int | None, Query(ge=0)] = None):
    """The visitor's conversation and its messages after `after` (a message id), oldest first."""
    await require(request, "read", visit.session.visitor_id)
    found = await widget_chat.history(db, visit.session, after)
    return {
        "conversation": widget_chat.conversation_out(found.conversation, visit.inbox),
        "messages": found.messages,
        "more": found.more,
    }


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    client_id: ClientId = Field(description="The widget's own id for the message: sending it again stores it once.")
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    # the pre-chat form's answers, with the first message
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=EMAIL)
    phone: str | None = Field(default=None, max_length=40, pattern=PHONE)


@router.post("/messages", status_code=201)
async def send(body: MessageIn, visit: VisitDep, request: Request, db: SessionDep) -> Any:
    await require(request, "send-ip", visit.address)
    await require(request, "send", visit.session.visitor_id)
    details = body.model_dump(include={"name", "email", "phone"}, exclude_none=True)
    live = await current_conversation(db, visit.session)
    if live is None or live.status == ConversationStatus.CLOSED:
        offline = await offline_state(db, visit.inbox, region_of(request, visit.address)) is not None
        missing = missing_details(prechat_fields(visit.inbox, offline), details)
        if missing:
            return problem(
                422,
                "Invalid request",
                "Fill in the form first.",
                errors=[{"detail": "Required.", "pointer": f"#/{field}"} for field in missing],
            )
    await db.rollback()  # nothing of this session's reads is held while the message is stored
    result = await widget_chat.post_message(
        request.app.state.sessionmaker,
        visit.session,
        body.client_id,
        body.text,
        profile=ContactProfile(display_name=body.name or "", region=region_of(request, visit.address)),
    )
    if details and not result.duplicate:
        agent = request.headers.get("user-agent", "")
        if await update_context(db, visit.session, ContextIn(**details), agent=agent, region=None):
            await db.commit()
    return {"message_id": result.message_id, "duplicate": result.duplicate}


@router.post("/uploads", status_code=201)
async def upload(visit: VisitDep, request: Request) -> dict[str, Any]:
    """Files (multipart `files`, with the widget's `client_id`): a message of the visitor's."""
    await require(request, "upload", visit.session.visitor_id)
    limits = uploads.inbox_limits(visit.inbox, app_max_bytes=request.app.state.settings.attachment_max_bytes)
    if int(request.headers.get("content-length") or 0) > limits.max_bytes * limits.max_count + 64 * 1024:
        raise ApiError(413, "The files are too large.")
    async with request.form(max_files=limits.max_count + 1, max_fields=5) as form:
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
            raise ApiError(422, "client_id must be 8 to 64 letters, digits, - or _.")
        try:
            checked = uploads.check(await read_files(form.getlist("files"), limits), limits)
        except uploads.Refused as refused:
            raise ApiError(refused.status, str(refused)) from None
    store = FileStore.from_settings(request.app.state.settings)
    message_id = await widget_files.post_files(request.app.state.sessionmaker, store, visit.session, client_id, checked)
    return {"message_id": message_id}


@router.get("/files/{attachment_id:int}")
async def file(attachment_id: int, visit: VisitDep, request: Request, db: SessionDep) -> Response:
    """A file of the visitor's own conversation (the token may come as `?token=` for an <img>)."""
    await require(request, "read", visit.session.visitor_id)
    attachment = await widget_files.visitor_file(db, visit.session, attachment_id)
    store = FileStore.from_settings(request.app.state.settings)
    return FileResponse(
        store.path_for(attachment.sha256),
        media_type=attachment.mime_type,
        headers={
            "content-disposition": "inline" if attachment.mime_type.startswith("image/") else "attachment",
            "x-content-type-options": "nosniff",
            "cache-control": "private, max-age=3600",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )


@router.post("/context", status_code=204)
async def context(body: ContextIn, visit: VisitDep, request: Request, db: SessionDep) -> Response:
    """Where the visitor is (the page, where they came from, their browser), for the operator."""
    await require(request, "read", visit.session.visitor_id)
    agent = request.headers.get("user-agent", "")
    if await update_context(db, visit.session, body, agent=agent, region=region_of(request, visit.address)):
        await db.commit()
    return Response(status_code=204)


@router.get("/poll")
async def poll(visit: VisitDep, request: Request, db: SessionDep, after: Annotated[int | None, Query(ge=0)] = None):
    """Events after `after` (an event id), as the stream would have sent them."""
    await require(request, "read", visit.session.visitor_id)
    found = await widget_chat.poll(db, visit.session, after)
    return {"events": found.events, "last_event_id": found.last_event_id, "resync": found.resync}


class TicksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivered_up_to: int | None = Field(default=None, ge=1, lt=2**63)
    read_up_to: int | None = Field(default=None, ge=1, lt=2**63)


@router.post("/ticks", status_code=204)
async def ticks(body: TicksIn, visit: VisitDep, request: Request, db: SessionDep) -> Response:
    """Our messages up to these ids reached the visitor's browser (delivered) or were shown (read)."""
    await require(request, "read", visit.session.visitor_id)
    await widget_chat.acknowledge(db, visit.session, delivered_up_to=body.delivered_up_to, read_up_to=body.read_up_to)
    await db.commit()
    return Response(status_code=204)


@router.post("/typing", status_code=204)
async def typing(visit: VisitDep, request: Request) -> Response:
    await require(request, "typing", visit.session.visitor_id)
    await widget_chat.typing(request.app.state.sessionmaker, visit.session)
    return Response(status_code=204)


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    score: int = Field(ge=0, le=10)
    comment: str | None = Field(default=None, max_length=2000)


@router.post("/rating")
async def rating(body: RatingIn, visit: VisitDep, request: Request, db: SessionDep) -> dict[str, Any]:
    await require(request, "send", visit.session.visitor_id)
    conversation = await widget_chat.rate(db, visit.session, body.score, body.comment or None)
    await db.commit()
    return {"conversation": widget_chat.conversation_out(conversation, visit.inbox)}
