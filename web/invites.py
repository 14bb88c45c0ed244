"""The page an invited operator (or one whose password was reset) opens: set a password, and
be signed in. The link's token is the credential; strangers trying tokens are throttled per
address like sign-ins (infra/login_throttle.py)."""

from __future__ import annotations

import hmac
import math
import secrets

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from infra import login_throttle
from services import accounts
from services.operators import PasswordInput
from web.auth import LOGIN_CSRF_COOKIE, client_address, signed_in
from web.deps import SessionDep
from web.forms import Form, errors_of
from web.templating import public_page, render

router = APIRouter()
Token = Path(max_length=100)


def _page(request: Request, context: dict, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    page = public_page(request, csrf_token=token)
    response = render(page, "invite.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.settings.cookie_secure
    )
    return response


def _address_key(request: Request) -> dict[str, login_throttle.Backoff]:
    keys = login_throttle.throttle_keys("", client_address(request))
    return {key: backoff for key, backoff in keys.items() if key.startswith("address:")}


async def _opened(request: Request, db, token: str):
    """(the link and its operator, None), or (None, the page that refuses it)."""
    keys = _address_key(request)
    wait, _ = await login_throttle.take_attempt(db, keys)
    if wait:
        context = {"invitee": None, "form": None, "wait": math.ceil(wait.total_seconds())}
        return None, _page(request, context, status_code=429)
    opened = await accounts.open_link(db, token)
    if opened is None:
        return None, _page(request, {"invitee": None, "form": None, "wait": None}, status_code=410)
    await login_throttle.clear(db, keys)
    await db.commit()
    return opened, None


@router.get("/invite/{token}")
async def show(request: Request, db: SessionDep, token: str = Token) -> Response:
    opened, refusal = await _opened(request, db, token)
    if refusal is not None:
        return refusal
    link, operator = opened
    return _page(request, {"invitee": operator, "purpose": link.purpose, "form": None, "wait": None})


@router.post("/invite/{token}")
async def accept(request: Request, db: SessionDep, token: str = Token) -> Response:
    posted = await request.form()
    cookie, sent = request.cookies.get(LOGIN_CSRF_COOKIE, ""), str(posted.get("csrf_token") or "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return await show(request, db, token)  # the form had expired: show it afresh
    opened, refusal = await _opened(request, db, token)
    if refusal is not None:
        return refusal
    link, operator = opened
    values = {"password": str(posted.get("password") or ""), "repeat": str(posted.get("repeat") or "")}
    try:
        data = PasswordInput.model_validate(values)
    except ValidationError as exc:
        page = public_page(request)
        form = Form({}, errors=errors_of(page, exc))
        return _page(request, {"invitee": operator, "purpose": link.purpose, "form": form, "wait": None}, 422)
    operator = await accounts.use_link(db, token, data)
    if operator is None:  # used or expired a moment ago
        return _page(request, {"invitee": None, "form": None, "wait": None}, status_code=410)
    return await signed_in(request, db, operator)
