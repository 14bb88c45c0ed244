"""One Jinja environment for pages and partials (jinja2-fragments renders single blocks for HTMX)."""

from pathlib import Path

from jinja2_fragments.fastapi import Jinja2Blocks

templates = Jinja2Blocks(directory=str(Path(__file__).parent / "templates"))
