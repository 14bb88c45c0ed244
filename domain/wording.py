"""User-facing words in pure code: `N_` marks a message (English, the msgid) for the catalogs
without translating it, and `invalid` makes a validation error that carries one, so a form in the
cabinet or a problem+json answer of the API says it in the reader's language.

Messages use %(name)s placeholders, filled from the error's context after translation.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

# the pydantic error type whose message is a msgid (web/forms.py translates it)
MSGID_ERROR = "switchboard"


def N_(message: str) -> str:
    """Marks a message for extraction where the locale is not known yet; translate it later."""
    return message


def invalid(msgid: str, **params: Any) -> PydanticCustomError:
    """Raise this from a pydantic validator: `raise invalid(N_("Unknown timezone %(name)s."), name=value)`."""
    return PydanticCustomError(MSGID_ERROR, msgid, params)
