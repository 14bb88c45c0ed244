"""The website widget's visitor-facing endpoints: the widget script's API, its SSE stream and
the visitor's own conversation, never anything else. Visitor text reuses web/i18n.py."""

from web.widget.api import PREFIX, router
from web.widget.stream import stream

__all__ = ["PREFIX", "router", "stream"]
