"""Settings in the cabinet: the admin pages (branches and working hours, operators, inboxes,
canned replies, labels, API tokens, audit log, health) and each operator's own profile. Routes
check the role on every request (`AdminPage` in web/deps.py); templates live under
`templates/settings/`."""

from fastapi import APIRouter

from web.settings import api_tokens

router = APIRouter()
router.include_router(api_tokens.router)
