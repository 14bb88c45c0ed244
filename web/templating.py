"""Rendering pages and fragments: one Jinja environment, one page context, one `render`.

Every cabinet route takes `PageDep` (web/deps.py) and answers `render(page, "cabinet/x.html",
{...}, block="rows")`: the whole page, or for an HTMX request only `block` (jinja2-fragments)
followed by the `oob` blocks, which templates mark `hx-swap-oob` when `oob` is true. Routes never
assemble the layout's context (operator, CSRF token, locale, timezone, theme, navigation) by hand.
Templates translate with `_()` / `ngettext()` and format with the `datetime`, `date`, `time`,
`relative`, `duration` and `number` filters, all in the page's locale and timezone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from jinja2_fragments import render_block
from markupsafe import Markup
from starlette.routing import NoMatchFound

from domain.enums import Locale, OperatorRole, Theme
from infra.models import Operator
from services.conversation_list import position
from web import labels
from web.i18n import N_, UTC_ZONE, Formats, negotiate, parse_locale, translations
from web.toasts import FLASH_COOKIE, Toast, ToastLevel, is_htmx, toast

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Pages load only what we serve: no CDN, no inline script, nothing framed elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The language and theme for pages before sign-in; they mirror the operator's own choice.
LOCALE_COOKIE = "sb_locale"
THEME_COOKIE = "sb_theme"
PREFERENCE_MAX_AGE = 365 * 86400


@dataclass(frozen=True)
class NavItem:
    route: str  # the route's name: the item shows only once a router provides it
    label: str  # msgid
    roles: frozenset[OperatorRole]
    badge: str | None = None  # a NavCounts field


EVERYONE = frozenset(OperatorRole)
SUPERVISORS = frozenset({OperatorRole.SUPERVISOR, OperatorRole.ADMIN})
NAV = (
    NavItem("home", N_("Conversations"), EVERYONE, badge="unread"),
    NavItem("supervisor", N_("Supervisor"), SUPERVISORS),
    NavItem("settings", N_("Settings"), SUPERVISORS),
)


@dataclass(frozen=True)
class NavCounts:
    """Badge counts in the navigation; None shows no badge (the inbox fills them in)."""

    unread: int | None = None


@dataclass(frozen=True)
class NavLink:
    href: str
    label: str
    current: bool
    badge: int | None


@dataclass(frozen=True)
class PageContext:
    """What every page's layout needs; built once per request by a dependency."""

    request: Request
    formats: Formats
    theme: Theme = Theme.AUTO
    operator: Operator | None = None
    csrf_token: str = ""
    counts: NavCounts = field(default_factory=NavCounts)
    flash: Toast | None = None  # a toast left by the previous plain form post

    @property
    def locale(self) -> Locale:
        return self.formats.locale

    @property
    def translations(self) -> Translations:
        return translations(self.locale)

    def gettext(self, message: str, **variables: Any) -> str:
        """Like the templates' `_()`: the message is always a %-format string."""
        return self.translations.gettext(message) % variables

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        return self.translations.ngettext(singular, plural, num) % {"num": num, **variables}

    @property
    def current_path(self) -> str:
        """The page the browser shows (for an HTMX request, the page that sent it): where a
        plain form sends the browser back to."""
        url = self.request.url
        if is_htmx(self.request):
            shown = urlsplit(self.request.headers.get("HX-Current-URL", ""))
            if shown.netloc == url.netloc and shown.path.startswith("/"):
                return urlunsplit(("", "", shown.path, shown.query, ""))
        return urlunsplit(("", "", url.path, url.query, ""))

    def toast(self, response: Response, level: ToastLevel, text: str) -> None:
        """Announce an already translated `text` with `response` (see web/toasts.py)."""
        toast(self.request, response, Toast(level, text), secret=self.csrf_token)

    def nav(self) -> list[NavLink]:
        if self.operator is None:
            return []
        links = []
        for item in NAV:
            if self.operator.role not in item.roles:
                continue
            try:
                href = str(self.request.app.url_path_for(item.route))
            except NoMatchFound:
                continue
            badge = getattr(self.counts, item.badge) if item.badge else None
            path = self.request.url.path
            current = path == href or (href != "/" and path.startswith(href + "/"))
            links.append(NavLink(href, item.label, current, badge))
        return links

    def template_context(self) -> dict[str, Any]:
        return {
            "page": self,
            "request": self.request,
            "operator": self.operator,
            "csrf_token": self.csrf_token,
            "locale": self.locale.value,
            "theme": self.theme.value,
            "nav": self.nav(),
            "counts": self.counts,
            "flash": self.flash,
            "oob": False,
        }


def public_page(request: Request, csrf_token: str = "", locale: Locale | None = None) -> PageContext:
    """The context of a page shown without a session (sign-in, errors): language as asked, else
    from the preference cookie or the browser; theme from the cookie; times in UTC."""
    locale = (
        locale or parse_locale(request.cookies.get(LOCALE_COOKIE)) or negotiate(request.headers.get("accept-language"))
    )
    theme = parse_theme(request.cookies.get(THEME_COOKIE))
    return PageContext(request, Formats(locale, UTC_ZONE), theme, csrf_token=csrf_token)


def parse_theme(value: str | None) -> Theme:
    try:
        return Theme(value or Theme.AUTO)
    except ValueError:
        return Theme.AUTO


def remember_preferences(
    request: Request, response: Response, *, locale: str | None = None, theme: str | None = None
) -> None:
    """Mirror the operator's language and theme into cookies, for the pages before sign-in."""
    for name, value in ((LOCALE_COOKIE, locale), (THEME_COOKIE, theme)):
        if value is not None:
            response.set_cookie(
                name,
                value,
                max_age=PREFERENCE_MAX_AGE,
                samesite="lax",
                secure=request.app.state.settings.cookie_secure,
            )


def _formats(context: Context) -> Formats:
    return context["page"].formats


# Templates translate with `_()`, `gettext()` and `ngettext()` as Jinja's "newstyle" gettext does
# (the text escaped like a template string, then %-formatted with the keyword arguments), done
# here in one call: through the i18n extension's alias and wrappers, `Markup % {}` for every
# message without a variable was a tenth of a page's time.
@pass_context
def _gettext(context: Context, message: str, **variables: Any) -> str:
    text = context["page"].translations.gettext(message)
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables if variables or "%" in text else text


@pass_context
def _ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
    text = context["page"].translations.ngettext(singular, plural, num)
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % {"num": num, **variables}


def _filter(method: str):
    @pass_context
    def apply(context: Context, value: datetime | timedelta | float, *args: Any) -> str:
        return getattr(_formats(context), method)(value, *args)

    return apply


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _sort_position(row: Any) -> str:
    """A listed row's key in its list's sort as integers the page's script compares (times in
    microseconds), '' for a row drawn outside a sorted list."""
    key = position(row)
    if key is None:
        return ""
    return " ".join(str((v - _EPOCH) // timedelta(microseconds=1) if isinstance(v, datetime) else v) for v in key)


env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,  # a misspelt variable fails the render instead of printing nothing
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
    # templates change only with a deploy (a restart): no stat() of each one per include, and
    # a page includes a row or a message partial per item
    auto_reload=False,
)
env.newstyle_gettext = True  # type: ignore[attr-defined]
env.globals.update(_=_gettext, gettext=_gettext, ngettext=_ngettext)
env.filters.update({name: _filter(name) for name in ("datetime", "date", "time", "relative", "duration", "number")})
env.filters["sort_position"] = _sort_position
env.globals["labels"] = labels


def is_fragment_request(request: Request) -> bool:
    """HTMX asked for part of a page (not a boosted navigation or a history restore)."""
    headers = request.headers
    return is_htmx(request) and "HX-Boosted" not in headers and "HX-History-Restore-Request" not in headers


def render(
    page: PageContext,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    block: str | None = None,
    oob: Iterable[str] = (),
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The whole page, or for an HTMX request `block` and then the out-of-band blocks."""
    values = page.template_context() | dict(context or {})
    parts = ([block] if block else []) + list(oob)
    if parts and is_fragment_request(page.request):
        html = "".join(render_block(env, template, name, values | {"oob": name != block}) for name in parts)
        shown_flash = False
    else:
        html = env.get_template(template).render(values)
        shown_flash = page.flash is not None
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Vary"] = "HX-Request, Cookie"
    if shown_flash:
        response.delete_cookie(FLASH_COOKIE)
    return response
