"""The code a site owner pastes for an inbox's website chat, with its options, and the lines
their Content-Security-Policy needs for it (shown on the inbox's settings page)."""

from __future__ import annotations

from html import escape
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

LOADER_PATH = "/static/widget/loader.js"


class SnippetOptions(BaseModel):
    """How the chat starts on the site: on the launcher's first click, after `delay` seconds,
    or on the first scroll; where the launcher sits, its colour and text; the language (auto:
    the page's, else the browser's)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    load: Literal["click", "delay", "scroll"] = "delay"
    delay: int = Field(default=3, ge=0, le=600)
    position: Literal["right", "left"] = "right"
    color: str = Field(default="#2563eb", pattern=r"^#[0-9a-fA-F]{6}$")
    locale: Literal["auto", "ru", "en"] = "auto"
    label: str = Field(default="", max_length=40)


def snippet(public_url: str, inbox_id: int, options: SnippetOptions) -> str:
    attrs = [f'src="{public_url.rstrip("/")}{LOADER_PATH}"', f'data-inbox="{inbox_id}"', f'data-load="{options.load}"']
    if options.load == "delay":
        attrs.append(f'data-delay="{options.delay}"')
    if options.position != "right":
        attrs.append(f'data-position="{options.position}"')
    attrs.append(f'data-color="{options.color.lower()}"')
    if options.locale != "auto":
        attrs.append(f'data-locale="{options.locale}"')
    if options.label:
        attrs.append(f'data-label="{escape(options.label, quote=True)}"')
    return f"<script {' '.join(attrs)} async></script>"


def csp_sources(public_url: str) -> str:
    """What a host page's CSP must allow: our script and our frame, nothing else."""
    parts = urlsplit(public_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return f"script-src {origin}; frame-src {origin}"
