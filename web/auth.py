"""Sign in and out of the cabinet."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import Locale
from infra import login_throttle
from infra.models import Operator, WebSession
from infra.security import DUMMY_HASH, new_token, token_digest, verify_password
from services import audit
from web.deps import SESSION_COOKIE, CsrfChecked, SessionDep, current_session
from web.i18n import N_, parse_locale
from web.templating import PageContext, public_page, remember_preferences, render

router = APIRouter()
log = logging.getLogger(__name__)

# Login happens before there is a session, so its CSRF token is a double-submit cookie.
LOGIN_CSRF_COOKIE = "sb_login_csrf"


def _login_page(
    request: Request,
    *,
    error: str | None = None,
    email: str = "",
    status_code: int = 200,
    locale: Locale | None = None,
    wait: int | None = None,
) -> Response:
    """`error` is a msgid, shown translated; `wait` (seconds) refuses a throttled sign-in instead,
    saying how long to wait and sending it as Retry-After."""
    token = secrets.token_urlsafe(24)
    page = public_page(request, csrf_token=token, locale=locale)
    if wait:
        error = _too_many_failures(page, wait)
    elif error:
        error = page.gettext(error)
    response = render(
        page,
        "login.html",
        {"error": error, "email": email},
        status_code=status_code,
        headers={"Retry-After": str(wait)} if wait else None,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=request.app.state.settings.cookie_secure
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, lang: str | None = None) -> Response:
    """`?lang=en` is the page's language switch; the choice is remembered in a cookie."""
    if (locale := parse_locale(lang)) is None:
        return _login_page(request)
    response = _login_page(request, locale=locale)
    remember_preferences(request, response, locale=locale.value)
    return response


@router.post("/login")
async def login(
    request: Request,
    db: SessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), csrf_token.encode()):
        return _login_page(request, error=N_("The form has expired. Please try again."), email=email, status_code=400)
    address = client_address(request)
    keys = login_throttle.throttle_keys(email, address)
    wait, failures = await login_throttle.take_attempt(db, keys)
    if wait:
        seconds = math.ceil(wait.total_seconds())
        log.info("sign-in from %s refused for %s s: too many failures", address, seconds)
        return _login_page(request, email=email, status_code=429, wait=seconds)
    operator = (
        await db.execute(select(Operator).where(func.lower(Operator.email) == email.strip().lower()))
    ).scalar_one_or_none()
    valid = verify_password(operator.password_hash if operator else DUMMY_HASH, password)
    if operator is None or not valid or not operator.is_active:
        # Recorded by the system: whoever typed it is not known to be the account's operator.
        details = {"address": address, "failures": failures, "operator_id": operator.id if operator else None}
        audit.record(db, "operator.login_failed", details=details)
        await db.commit()
        return _login_page(request, error=N_("Wrong e-mail or password."), email=email, status_code=401)

    audit.record(db, "operator.login", operator_id=operator.id)
    await login_throttle.clear(db, keys)
    return await signed_in(request, db, operator)


async def signed_in(request: Request, db: AsyncSession, operator: Operator, to: str = "/") -> Response:
    """Open a session for `operator` (commits) and send the browser to `to` with its cookie."""
    settings = request.app.state.settings
    token = new_token()
    db.add(
        WebSession(
            token_hash=token_digest(token),
            operator_id=operator.id,
            csrf_token=secrets.token_urlsafe(32),
            expires_at=datetime.now(UTC) + timedelta(days=settings.session_days),
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
            address=client_address(request)[:64],
        )
    )
    await db.commit()
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    remember_preferences(request, response, locale=operator.locale, theme=operator.theme)
    return response


def client_address(request: Request) -> str:
    """The address the app sees; X-Forwarded-For is not trusted here (no trusted proxies yet)."""
    return request.client.host if request.client else "unknown"


def _too_many_failures(page: PageContext, seconds: int) -> str:
    if seconds < 60:
        return page.ngettext(
            "Too many failed sign-ins. Try again in %(num)d second.",
            "Too many failed sign-ins. Try again in %(num)d seconds.",
            seconds,
        )
    return page.ngettext(
        "Too many failed sign-ins. Try again in %(num)d minute.",
        "Too many failed sign-ins. Try again in %(num)d minutes.",
        math.ceil(seconds / 60),
    )


@router.post("/logout", dependencies=[CsrfChecked])
async def logout(db: SessionDep, web_session: Annotated[WebSession, Depends(current_session)]) -> Response:
    await db.execute(delete(WebSession).where(WebSession.id == web_session.id))
    await db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
