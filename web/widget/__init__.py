"""The website widget's visitor-facing endpoints: the widget script's API, its SSE stream and
the visitor's own conversation, never anything else. Visitor text reuses web/i18n.py."""

from fastapi import APIRouter

from web.widget import api, frame
from web.widget.api import PREFIX
from web.widget.stream import stream

router = APIRouter()
router.include_router(api.router)
router.include_router(frame.router)

__all__ = ["PREFIX", "router", "stream"]
