"""The signed-in operator's own switches in the header: availability, language, theme.

Each is a plain form that works without JavaScript (303 back to the page it was sent from);
the status switch also answers an HTMX request with the switch itself and a toast.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form
from fastapi.responses import RedirectResponse, Response

from domain.enums import Locale, OperatorStatus, Theme
from services.operators import set_preferences, set_status
from web import labels
from web.deps import CsrfChecked, PageDep, SessionDep
from web.templating import is_fragment_request, remember_preferences, render
from web.toasts import ToastLevel

router = APIRouter(prefix="/me", dependencies=[CsrfChecked])

BackTo = Annotated[str, Form(alias="next", max_length=2000)]


def local_path(value: str) -> str:
    """Where to send the browser back: a path on this site, never another host."""
    if value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


@router.post("/status", name="set_status")
async def change_status(
    page: PageDep, db: SessionDep, status: Annotated[OperatorStatus, Form()], back: BackTo = "/"
) -> Response:
    await set_status(db, page.operator, status)
    await db.commit()
    if is_fragment_request(page.request):
        response: Response = render(page, "partials/_status_switch.html")
    else:
        response = RedirectResponse(local_path(back), status_code=303)
    status_name = page.gettext(labels.OPERATOR_STATUS[status])
    page.toast(response, ToastLevel.SUCCESS, page.gettext("Your status: %(status)s", status=status_name))
    return response


@router.post("/locale", name="set_locale")
async def change_locale(
    page: PageDep, db: SessionDep, locale: Annotated[Locale, Form()], back: BackTo = "/"
) -> Response:
    await set_preferences(db, page.operator, locale=locale.value)
    await db.commit()
    response = RedirectResponse(local_path(back), status_code=303)
    remember_preferences(page.request, response, locale=page.operator.locale, theme=page.operator.theme)
    return response


@router.post("/theme", name="set_theme")
async def change_theme(page: PageDep, db: SessionDep, theme: Annotated[Theme, Form()], back: BackTo = "/") -> Response:
    await set_preferences(db, page.operator, theme=theme.value)
    await db.commit()
    response = RedirectResponse(local_path(back), status_code=303)
    remember_preferences(page.request, response, locale=page.operator.locale, theme=page.operator.theme)
    return response
