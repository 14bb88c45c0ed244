"""The website chat's files: within their size budgets (gzipped, as served), and nothing inline
(no <script> or <style> body, no style= or on*= attribute), so a strict CSP holds."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[3] / "web" / "static" / "widget"
LOADER_BUDGET = 2 * 1024
WIDGET_BUDGET = 30 * 1024


def gzipped(*names: str) -> int:
    return sum(len(gzip.compress((WIDGET / name).read_bytes(), compresslevel=9)) for name in names)


def test_the_loader_and_the_chat_stay_within_their_budgets():
    loader = gzipped("loader.js")
    chat = gzipped("frame.html", "frame.js", "frame.css")
    print(f"loader.js {loader} B gzipped (budget {LOADER_BUDGET}); chat {chat} B (budget {WIDGET_BUDGET})")
    assert loader <= LOADER_BUDGET
    assert chat <= WIDGET_BUDGET


def test_nothing_is_inline():
    page = (WIDGET / "frame.html").read_text()
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/widget/frame.js" defer>']
    assert "</script>" in page and not re.search(r"<script[^>]*>[^<]+</script>", page)
    assert "<style" not in page and not re.search(r"\sstyle\s*=", page)
    assert not re.search(r"\son[a-z]+\s*=", page)
    for script in ("loader.js", "frame.js"):
        source = (WIDGET / script).read_text()
        # styles only through the CSSOM (element.style), never as markup a CSP would refuse
        assert not re.search(r"setAttribute\(\s*[\"']style|innerHTML\s*=\s*[\"'`]<|\beval\(|new Function", source)
