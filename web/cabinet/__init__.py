"""The masters' cabinet: the pages operators and supervisors work in (inbox, thread, supervisor
board) and the header's own switches. Each module has a router; `router` gathers them for api.py.

A page route takes `PageDep` and answers `render(page, "cabinet/<page>.html", {...})`; its
template extends `base.html` and lives under `templates/cabinet/`.
"""

from fastapi import APIRouter

from web.cabinet import actions, conversation, inbox, live, me, supervisor

router = APIRouter()
router.include_router(inbox.router)
router.include_router(conversation.router)
router.include_router(actions.router)
router.include_router(actions.changes)
router.include_router(live.router)
router.include_router(me.router)
router.include_router(supervisor.router)
