"""Reading a customer's answer to the rating request (seed 003 item 13: 1-5 stars or NPS 0-10)."""

from __future__ import annotations

import re

from domain.enums import RatingMode

RANGES = {RatingMode.STARS: (1, 5), RatingMode.NPS: (0, 10)}
# a bare number, a "rate:N" button payload, or N stars typed as emoji
_NUMBER = re.compile(r"^\s*(?:rate:)?(\d{1,2})\s*(?:/\s*(?:5|10))?\s*$")


def parse_rating(mode: str, answer: str | None) -> int | None:
    """The score in the inbox's scale, or None if the answer is not a rating."""
    try:
        scale = RANGES.get(RatingMode(mode))
    except ValueError:
        return None
    if scale is None or not answer:
        return None
    stripped = answer.strip()
    if stripped and set(stripped) == {"⭐"}:
        score = len(stripped)
    elif match := _NUMBER.match(stripped):
        score = int(match.group(1))
    else:
        return None
    low, high = scale
    return score if low <= score <= high else None


def rating_prompt(mode: RatingMode) -> str:
    if mode == RatingMode.NPS:
        return "How likely are you to recommend us to a friend? Reply with a number from 0 to 10."
    return "Please rate this conversation: reply with a number from 1 to 5."
