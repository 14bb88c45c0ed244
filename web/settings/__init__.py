"""Settings in the cabinet: the admin pages (branches and working hours, operators, inboxes,
canned replies, labels, API tokens, audit log, health, integrations) and each operator's own
profile. Every route checks the role (`AdminPage`, `SupervisorPage` in web/deps.py); templates live under
`templates/settings/` and extend `settings/_layout.html` (its sections: nav.py)."""

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from web.deps import PageDep
from web.settings import (
    api_inbox,
    api_tokens,
    audit,
    bitrix24,
    branches,
    canned_replies,
    health,
    inboxes,
    labels,
    operators,
    profile,
    staff_notifications,
    webhooks,
)
from web.settings.nav import sections_for

router = APIRouter()


@router.get("/settings", name="settings")
async def settings_home(page: PageDep) -> RedirectResponse:
    """The first section the operator may open."""
    return RedirectResponse(sections_for(page)[0].href, status_code=303)


for module in (
    branches,
    operators,
    inboxes,
    api_inbox,
    canned_replies,
    labels,
    api_tokens,
    webhooks,
    bitrix24,
    staff_notifications,
    audit,
    health,
    profile,
):
    router.include_router(module.router)
