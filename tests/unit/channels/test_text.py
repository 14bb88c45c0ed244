"""Markdown-lite rendering, escaping and splitting."""

from __future__ import annotations

import html
import random
import re

import pytest

from channels.plan import Step, plan_steps
from channels.text import render_html, render_parts, split_text
from domain.contracts import OutboundAttachment, OutboundMessage, PermanentError
from domain.enums import ChannelKind, MessageFormat


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("**bold** and _italic_", "<b>bold</b> and <i>italic</i>"),
        ("`a < b && c`", "<code>a &lt; b &amp;&amp; c</code>"),
        ("`**not bold**`", "<code>**not bold**</code>"),
        ('[docs](https://x.ru/?a=1&b="2")', '<a href="https://x.ru/?a=1&amp;b=&quot;2&quot;">docs</a>'),
        ("[**bold link**](https://x.ru)", '<a href="https://x.ru"><b>bold link</b></a>'),
        ("**_both_**", "<b><i>both</i></b>"),
        ("<script>alert(1)</script> & co", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
        ("file_name_here and snake_case", "file_name_here and snake_case"),
        ("**unclosed bold", "**unclosed bold"),
        ("[click](javascript:alert(1))", "[click](javascript:alert(1))"),
        ("line one\n**line** two", "line one\n<b>line</b> two"),
        ("a > b", "a &gt; b"),
        ("😀 **привет**", "😀 <b>привет</b>"),
    ],
)
def test_render_html(source: str, rendered: str) -> None:
    assert render_html(source) == rendered


def test_plain_format_is_left_alone() -> None:
    assert render_parts("**x** <y>", MessageFormat.PLAIN, 100) == ["**x** <y>"]


def test_exactly_at_the_limit_is_one_part() -> None:
    text = "a" * 4096
    assert split_text(text, 4096) == [text]


def test_one_over_the_limit_is_two_parts() -> None:
    parts = split_text("a" * 4097, 4096)
    assert [len(p) for p in parts] == [4096, 1]


def test_prefers_paragraphs_then_lines() -> None:
    para1, para2 = "x" * 3000, "y" * 3000
    assert split_text(f"{para1}\n\n{para2}", 4096) == [para1, para2]
    lines = [("l1 " * 500).strip(), ("l2 " * 500).strip(), ("l3 " * 500).strip()]  # 1499 chars each
    assert split_text("\n".join(lines), 4096) == ["\n".join(lines[:2]), lines[2]]


def test_sentences_before_words() -> None:
    sentence = ("word " * 19 + "end.").strip()  # 99 chars
    text = " ".join([sentence] * 3)
    assert split_text(text, 210) == [f"{sentence} {sentence}", sentence]


def test_long_word_is_cut_hard() -> None:
    assert [len(p) for p in split_text("z" * 10000, 4096)] == [4096, 4096, 1808]


def test_never_empty_parts() -> None:
    assert split_text("   \n\n  \n", 10) == []
    assert split_text("", 10) == []
    parts = split_text("a\n\n\n\n\n\nb" + " " * 30, 3)
    assert parts == ["a", "b"]


@pytest.mark.parametrize(
    "grapheme",
    ["👍🏽", "👨‍👩‍👧‍👦", "🇷🇺", "é", "❤️"],
    ids=["skin-tone", "zwj-family", "flag", "combining", "variation-selector"],
)
def test_hard_cut_keeps_graphemes_whole(grapheme: str) -> None:
    text = grapheme * 50
    limit = 4 * len(grapheme) + 1  # never a multiple of the grapheme length
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(p == grapheme * (len(p) // len(grapheme)) for p in parts)
    assert "".join(parts) == text


def test_markdown_constructs_are_not_cut() -> None:
    text = "intro " * 10 + "[a link with several words](https://example.org/x) tail"
    limit = 80
    parts = render_parts(text, MessageFormat.MARKDOWN, limit)
    assert sum(p.count('<a href="https://example.org/x">a link with several words</a>') for p in parts) == 1
    assert all(len(p) <= limit for p in parts)


def test_escaping_growth_is_split_again() -> None:
    text = " ".join(["a&b<c>"] * 1000)  # 6999 chars; escaped ~19000
    parts = render_parts(text, MessageFormat.MARKDOWN, 4096)
    assert all(len(p) <= 4096 for p in parts)
    assert len(parts) >= 5
    assert " ".join(html.unescape(p) for p in parts) == text


def test_split_keeps_every_character_but_separators() -> None:
    rng = random.Random(20260101)
    alphabet = ["a", "b", " ", "\n", ".", "&", "<", "**", "_", "`", "😀", "👍🏽", "й"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        limit = rng.randint(5, 60)
        parts = split_text(text, limit)
        assert all(0 < len(p) <= limit and p.strip() for p in parts)
        assert re.sub(r"\s", "", "".join(parts)) == re.sub(r"\s", "", text)
        rendered = render_parts(text, MessageFormat.MARKDOWN, limit)
        assert all(0 < len(p) <= limit for p in rendered)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        split_text("x", 0)


def _msg(text: str, attachments: int = 0) -> OutboundMessage:
    atts = [
        OutboundAttachment(attachment_id=i, file_name=f"f{i}.pdf", mime_type="application/pdf", size=1, sha256="0")
        for i in range(1, attachments + 1)
    ]
    return OutboundMessage(
        message_id=1,
        conversation_id=1,
        inbox_id=1,
        channel=ChannelKind.TELEGRAM,
        provider_chat_id="1",
        text=text,
        format=MessageFormat.MARKDOWN,
        attachments=atts,
    )


def test_plan_short_text_rides_as_caption() -> None:
    msg = _msg("**see** attached", attachments=2)
    assert plan_steps(msg, text_limit=4096, caption_limit=1024) == [
        Step("<b>see</b> attached", msg.attachments[0]),
        Step(None, msg.attachments[1]),
    ]


def test_plan_long_text_goes_first() -> None:
    msg = _msg("word " * 300, attachments=1)  # 1500 chars: over a caption
    steps = plan_steps(msg, text_limit=4096, caption_limit=1024)
    assert [s.attachment for s in steps] == [None, msg.attachments[0]]
    assert steps[0].text == ("word " * 300).strip()


def test_plan_empty_message_is_refused() -> None:
    with pytest.raises(PermanentError):
        plan_steps(_msg("  \n "), text_limit=4096, caption_limit=1024)
