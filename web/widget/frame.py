"""GET /widget/frame: the chat's own page, loaded by the loader (web/static/widget/loader.js)
into an iframe on the host site. Its Content-Security-Policy lets only the inbox's allowed sites
frame it, and lets it load nothing but our own files: no inline script or style anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.widget_sessions import widget_inbox
from web.deps import SessionDep
from web.widget.access import host_allowed, site_of

router = APIRouter(include_in_schema=False)
PAGE = (Path(__file__).resolve().parent.parent / "static" / "widget" / "frame.html").read_bytes()
NOT_HERE = HTMLResponse("<!doctype html><title>Chat</title><p>This chat is not available here.</p>", status_code=404)


def frame_ancestors(allowed: list[str]) -> str:
    """The sites that may frame the chat, on any port (the allowed list has host names only)."""
    if not allowed:
        return "*"
    sources = []
    for host in allowed:
        sources.append(f"{host}:*")
        if host.startswith("*."):
            sources.append(f"{host[2:]}:*")  # *.example.org covers example.org as well
    return " ".join(sources)


def policy(allowed: list[str]) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; form-action 'none'; base-uri 'none'; "
        f"frame-ancestors {frame_ancestors(allowed)}"
    )


@router.get("/widget/frame")
async def frame(request: Request, db: SessionDep, inbox: Annotated[int, Query(ge=1, lt=2**63)]) -> HTMLResponse:
    found = await widget_inbox(db, inbox)
    if found is None:
        return NOT_HERE
    allowed = list((found.settings or {}).get("allowed_domains") or [])
    site = site_of(request.headers)  # the host page (its origin, as browsers send a cross-site Referer)
    host = urlsplit(site).hostname if site else None
    if host is not None and not host_allowed(host, allowed):
        return HTMLResponse(NOT_HERE.body, status_code=403)
    return HTMLResponse(
        PAGE,
        headers={
            "content-security-policy": policy(allowed),
            "referrer-policy": "same-origin",
            "x-content-type-options": "nosniff",
            "cache-control": "no-cache",
        },
    )
