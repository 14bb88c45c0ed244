"""What every settings page shares: its sections (shown by role), the id path parameter, and
`render_settings`, which is `render` with the sections' navigation in the context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import NoMatchFound

from domain.contracts import INT64_MAX
from domain.enums import OperatorRole
from web.i18n import N_
from web.templating import EVERYONE, SUPERVISORS, PageContext, render
from web.toasts import ToastLevel

ADMINS = frozenset({OperatorRole.ADMIN})
# an id from the address: a number the database can hold, else 422 before any query
Id = Annotated[int, Path(ge=1, le=INT64_MAX)]


@dataclass(frozen=True)
class Section:
    route: str  # the route name of its page
    label: str  # msgid
    roles: frozenset[OperatorRole]


SECTIONS = (
    Section("settings_branches", N_("Branches"), ADMINS),
    Section("settings_operators", N_("Operators"), ADMINS),
    Section("settings_inboxes", N_("Inboxes"), ADMINS),
    Section("settings_canned_replies", N_("Canned replies"), ADMINS),
    Section("settings_labels", N_("Labels"), ADMINS),
    Section("settings_api_tokens", N_("API tokens"), ADMINS),
    Section("settings_webhooks", N_("Outgoing webhooks"), ADMINS),
    Section("settings_bitrix24", N_("Bitrix24"), ADMINS),
    Section("settings_staff_notifications", N_("Staff notifications"), ADMINS),
    Section("settings_audit", N_("Audit log"), SUPERVISORS),
    Section("settings_health", N_("Health"), SUPERVISORS),
    Section("settings_profile", N_("My profile"), EVERYONE),
)


@dataclass(frozen=True)
class SectionLink:
    href: str
    label: str
    current: bool


def sections_for(page: PageContext) -> list[SectionLink]:
    if page.operator is None:
        return []
    path = page.request.url.path
    links = []
    for section in SECTIONS:
        if page.operator.role in section.roles:
            try:
                href = str(page.request.app.url_path_for(section.route))
            except NoMatchFound:  # a section not built into this app
                continue
            links.append(SectionLink(href, section.label, path == href or path.startswith(href + "/")))
    return links


def render_settings(
    page: PageContext, template: str, context: Mapping[str, Any] | None = None, **kwargs: Any
) -> HTMLResponse:
    return render(page, template, {"sections": sections_for(page), **(context or {})}, **kwargs)


def done(page: PageContext, to: str, message: str) -> Response:
    """After a change: back to `to` (303, so a reload does not post again) with a toast."""
    response = RedirectResponse(to, status_code=303)
    page.toast(response, ToastLevel.SUCCESS, message)
    return response
