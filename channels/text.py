"""Our Markdown-lite rendered for providers, and splitting long text into sendable parts.

Markdown-lite is `**bold**`, `_italic_`, `` `code` ``, `[text](url)` and newlines. Every
construct lives on one line, so splitting the *source* on line boundaries never cuts one;
inside a line the splitter keeps constructs whole. Both Telegram and MAX get HTML: it has
one well-defined escape (`< > &`), while MAX's Markdown flavour documents no way to escape
`*`, `_`, `~`, `+`, `^`, `#` or `>` typed by a user.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_left

from domain.enums import MessageFormat

# One alternation, tried left to right at each position: code first so nothing inside
# backticks is formatted; `_` only at word edges so snake_case stays literal.
_TOKEN = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>[^)\s]+)\)"
    r"|\*\*(?P<bold>[^\n]+?)\*\*"
    r"|(?<!\w)_(?P<italic>[^_\n]+?)_(?!\w)"
)
_SAFE_URL = re.compile(r"(?i)^(https?://|tg://|mailto:)")

# Split levels, coarse to fine: paragraph, line, sentence end, any blank.
_SEPARATORS = (
    re.compile(r"\n{2,}"),
    re.compile(r"\n"),
    re.compile(r"(?<=[.!?…])[ \t]+"),
    re.compile(r"[ \t]+"),
)
_ZWJ = "\u200d"


def render_html(text: str) -> str:
    """Markdown-lite -> HTML (Telegram parse_mode HTML, MAX format html); user text escaped."""
    out: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(text):
        out.append(_escape(text[pos : m.start()]))
        out.append(_render_token(m))
        pos = m.end()
    out.append(_escape(text[pos:]))
    return "".join(out)


def _render_token(m: re.Match[str]) -> str:
    if (code := m.group("code")) is not None:
        return f"<code>{_escape(code)}</code>"
    if (label := m.group("label")) is not None:
        url = m.group("url")
        if not _SAFE_URL.match(url):  # javascript: and friends stay visible text
            return _escape(m.group(0))
        return f'<a href="{html.escape(url, quote=True)}">{render_html(label)}</a>'
    if (bold := m.group("bold")) is not None:
        return f"<b>{render_html(bold)}</b>"
    return f"<i>{render_html(m.group('italic'))}</i>"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def render(text: str, fmt: MessageFormat) -> str:
    return render_html(text) if fmt == MessageFormat.MARKDOWN else text


def render_parts(text: str, fmt: MessageFormat, limit: int) -> list[str]:
    """Split the source, render each part, and re-split any part that escaping grew past `limit`."""
    out: list[str] = []
    _render_parts(text, fmt, limit, limit, _TOKEN if fmt == MessageFormat.MARKDOWN else None, out)
    return out


def _render_parts(
    text: str, fmt: MessageFormat, limit: int, source_limit: int, protect: re.Pattern[str] | None, out: list[str]
) -> None:
    for part in split_text(text, source_limit, protect=protect):
        rendered = render(part, fmt)
        if len(rendered) <= limit:
            out.append(rendered)
        elif len(part) == 1:
            raise ValueError(f"limit {limit} cannot hold the rendering of {part!r}")
        else:
            # `&` -> `&amp;` can grow a part up to 5x: shrink the source proportionally (and
            # always below its length, so this ends) and split it again.
            smaller = max(1, min(len(part) - 1, len(part) * limit // len(rendered)))
            _render_parts(part, fmt, limit, smaller, protect, out)


def split_text(text: str, limit: int, *, protect: re.Pattern[str] | None = None) -> list[str]:
    """Split into parts of at most `limit` characters, preferring paragraph, then line, then
    sentence, then word boundaries; parts are trimmed (messengers trim them anyway). Matches
    of `protect` are not cut unless one alone exceeds the limit. Never returns a blank part."""
    if limit < 1:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    _split(text, limit, 0, protect, parts)
    return [stripped for p in parts if (stripped := p.strip())]


def _split(text: str, limit: int, level: int, protect: re.Pattern[str] | None, out: list[str]) -> None:
    if len(text) <= limit:
        out.append(text)
        return
    if level == len(_SEPARATORS):
        out.extend(_hard_cut(text, limit))
        return
    chunk = ""
    gap = ""  # separator between `chunk` and the next piece, kept only inside a chunk
    for piece, sep in _pieces(text, _SEPARATORS[level], protect):
        if len(piece) > limit:
            if chunk:
                out.append(chunk)
            _split(piece, limit, level + 1, protect, out)
            chunk, gap = "", ""
            continue
        joined = f"{chunk}{gap}{piece}" if chunk else piece
        if len(joined) <= limit:
            chunk = joined
        else:
            out.append(chunk)
            chunk = piece
        gap = sep
    if chunk:
        out.append(chunk)


def _pieces(text: str, sep: re.Pattern[str], protect: re.Pattern[str] | None) -> list[tuple[str, str]]:
    """(piece, separator after it) pairs, ignoring separators inside protected spans."""
    spans = [m.span() for m in protect.finditer(text)] if protect else []
    starts = [a for a, _ in spans]  # finditer yields them ordered and disjoint
    pieces: list[tuple[str, str]] = []
    start = 0
    for m in sep.finditer(text):
        i = bisect_left(starts, m.start()) - 1
        if m.start() == 0 or (i >= 0 and spans[i][1] > m.start()):
            continue
        pieces.append((text[start : m.start()], m.group(0)))
        start = m.end()
    pieces.append((text[start:], ""))
    return pieces


def _hard_cut(text: str, limit: int) -> list[str]:
    """Cut a run with no usable boundary, never inside a grapheme (emoji ZWJ sequences,
    skin tones, variation selectors, combining accents) unless the grapheme alone is too long."""
    parts: list[str] = []
    while len(text) > limit:
        cut = limit
        while cut > 0 and _joins(text, cut):
            cut -= 1
        if cut == 0:
            cut = limit
        parts.append(text[:cut])
        text = text[cut:]
    parts.append(text)
    return parts


def _joins(text: str, i: int) -> bool:
    """True when text[i-1] and text[i] belong to one grapheme."""
    nxt, prev = text[i], text[i - 1]
    return (
        nxt == _ZWJ
        or prev == _ZWJ
        or unicodedata.combining(nxt) != 0
        or "\ufe00" <= nxt <= "\ufe0f"
        or "\U0001f3fb" <= nxt <= "\U0001f3ff"
        or "\U000e0020" <= nxt <= "\U000e007f"  # tag characters of flag sequences
        or (_is_regional(prev) and _is_regional(nxt) and _regional_run(text, i) % 2 == 1)
    )


def _is_regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _regional_run(text: str, i: int) -> int:
    """How many regional indicators end at text[i-1]; odd means text[i] completes a flag."""
    n = 0
    while i - 1 - n >= 0 and _is_regional(text[i - 1 - n]):
        n += 1
    return n
