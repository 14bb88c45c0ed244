"""RFC 9457 problem+json for the API; readable pages for the cabinet.

A cabinet page that fails gets a translated error page in the base layout; an HTMX request gets
the same words as a toast (and no swap), so a failed action never leaves a broken fragment.
Every refusal a route or a service raises is answered here, one way per kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import Forbidden, Invalid
from web.deps import FormExpired, LoginRequired
from web.i18n import N_
from web.templating import public_page, render
from web.toasts import HxEvent, is_htmx, trigger

PROBLEM = "application/problem+json"

# (title, explanation) msgids per kind of failure
EXPIRED = (
    N_("The form has expired"),
    N_("The page was open for too long or you signed out in another tab. Reload the page and try again."),
)
ERRORS = {
    403: (N_("No access"), N_("You do not have access to this page.")),
    404: (N_("Page not found"), N_("There is no such page, or it is not yours to see.")),
    422: (N_("Something was entered wrong"), N_("Check what you entered and try again.")),
    500: (
        N_("Something went wrong"),
        N_("We could not finish this. Try again in a minute; if it keeps happening, tell your administrator."),
    ),
}
OTHER_CLIENT_ERROR = (N_("The request could not be completed"), N_("Go back and try again."))


class FieldError(BaseModel):
    """One thing wrong with a request: `pointer` (RFC 6901, into the JSON body), `parameter`
    (query or path) or `header` says where."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None
    header: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details: how the API answers every refusal and every failure."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "No such object, or not yours."}
            ]
        }
    )

    type: str = Field("about:blank", description="A URI naming the kind of problem; about:blank: see `status`.")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = Field(None, description="What was wrong with a request that did not validate.")


# Problem types of our own (RFC 9457 section 3.1.1): a URN each, named, not dereferenced.
IDEMPOTENCY_KEY_REUSED = "urn:switchboard:problem:idempotency-key-reused"
READ_ONLY_TOKEN = "urn:switchboard:problem:read-only-token"
RATE_LIMITED = "urn:switchboard:problem:rate-limited"


class ApiError(StarletteHTTPException):
    """A refusal answered as problem+json with a type of its own (and headers, such as Retry-After)."""

    def __init__(
        self, status: int, detail: str, *, type: str = "about:blank", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, detail, headers=dict(headers) if headers else None)
        self.type = type


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: object,
) -> JSONResponse:
    body: dict[str, object] = {"type": type, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's errors as RFC 9457 members: a JSON pointer into the body, or the parameter or
    header by name."""
    found = []
    for error in errors:
        where, *path = error["loc"] or ("body",)
        item = {"detail": error["msg"]}
        if where == "body":
            item["pointer"] = "#" + "".join(f"/{str(part).replace('~', '~0').replace('/', '~1')}" for part in path)
        elif where == "header":
            item["header"] = str(path[0]) if path else ""
        else:
            item["parameter"] = str(path[0]) if path else str(where)
        found.append(item)
    return found


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/webhooks/", "/widget/v1/")) or path in ("/healthz", "/readyz"):
        return False
    return "text/html" in request.headers.get("accept", "") or "HX-Request" in request.headers


def error_page(
    request: Request, status: int, words: tuple[str, str] | None = None, params: dict[str, object] | None = None
) -> Response:
    """The cabinet's answer to a failure: a page, or for HTMX a toast and no swap. `params` fill
    the explanation's placeholders."""
    title, explanation = words or ERRORS.get(status) or (ERRORS[500] if status >= 500 else OTHER_CLIENT_ERROR)
    page = public_page(request)
    explained = page.gettext(explanation, **(params or {}))
    if is_htmx(request):
        response = Response(status_code=status, headers={"HX-Reswap": "none"})
        trigger(response, HxEvent.TOAST, {"level": "error", "text": explained})
        return response
    context = {"status": status, "title": page.gettext(title), "explanation": explained}
    return render(page, "errors/error.html", context, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_html(request):
            if "HX-Request" in request.headers:
                return Response(status_code=401, headers={"HX-Redirect": "/login"})
            return RedirectResponse("/login", status_code=303)
        return problem(401, "Unauthorized", "Sign in first.")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_html(request):
            return error_page(request, exc.status_code, EXPIRED if isinstance(exc, FormExpired) else None)
        return problem(
            exc.status_code,
            HTTPStatus(exc.status_code).phrase,
            str(exc.detail),
            type=getattr(exc, "type", "about:blank"),
            headers=exc.headers,
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        # the same answer as for an id that does not exist, so ids cannot be probed
        if _wants_html(request):
            return error_page(request, 404)
        return problem(404, "Not Found", "No such object, or not yours.")

    @app.exception_handler(Invalid)
    async def _refused(request: Request, exc: Invalid) -> Response:
        """A service's refusal no route turned into a form error."""
        if _wants_html(request):
            return error_page(request, 422, (ERRORS[422][0], exc.message), exc.params)
        detail = exc.message % exc.params if exc.params else exc.message
        return problem(422, "Unprocessable Content", detail, code=exc.code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_html(request):
            return error_page(request, 422)
        return problem(422, "Invalid request", "The request did not validate.", errors=field_errors(exc.errors()))

    @app.exception_handler(PoolTimeout)
    async def _overloaded(request: Request, exc: PoolTimeout) -> Response:
        # every database connection of this process stayed busy for the pool's timeout: the
        # caller may retry, and is told so instead of being given a failure of ours
        if _wants_html(request):
            return error_page(request, 503)
        detail = "The service is overloaded: try again in a moment."
        return problem(503, "Service Unavailable", detail, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette logs the exception after this answer; here only the answer is chosen.
        if _wants_html(request):
            return error_page(request, 500)
        return problem(500, "Internal Server Error", "The server could not finish this request.")
