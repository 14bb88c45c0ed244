"""Forms on cabinet pages: the submitted fields read into the service's Pydantic model (the one
the API takes too), and every failure worded next to its field in the page's language.

    form = await read_form(page, LabelInput)
    if form.data is None: re-render with form.values and form.errors (status 422)

Fields are read by the model's annotations: lists from repeated fields, booleans from checkboxes
(absent is False), an empty optional field as None; NUL characters are dropped. Whatever else
was posted is ignored.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from domain.wording import MSGID_ERROR, N_
from services.errors import Invalid
from web.templating import PageContext

M = TypeVar("M", bound=BaseModel)
GENERAL = "__all__"  # errors about the form as a whole

# pydantic's error types -> (msgid, the context key it shows as %(value)s)
_MESSAGES: dict[str, tuple[str, str | None]] = {
    "missing": (N_("Fill this in."), None),
    "string_too_long": (N_("At most %(value)s characters."), "max_length"),
    "string_pattern_mismatch": (N_("This is not in the expected form."), None),
    "int_parsing": (N_("Enter a whole number."), None),
    "int_from_float": (N_("Enter a whole number."), None),
    "int_type": (N_("Enter a whole number."), None),
    "float_parsing": (N_("Enter a number."), None),
    "float_type": (N_("Enter a number."), None),
    "finite_number": (N_("Enter a number."), None),
    "greater_than_equal": (N_("At least %(value)s."), "ge"),
    "greater_than": (N_("More than %(value)s."), "gt"),
    "less_than_equal": (N_("At most %(value)s."), "le"),
    "less_than": (N_("Less than %(value)s."), "lt"),
    "enum": (N_("Choose one of the options."), None),
    "literal_error": (N_("Choose one of the options."), None),
    "bool_parsing": (N_("Choose one of the options."), None),
    "too_long": (N_("At most %(value)s items."), "max_length"),
    "date_parsing": (N_("Enter a date as YYYY-MM-DD."), None),
    "date_from_datetime_parsing": (N_("Enter a date as YYYY-MM-DD."), None),
    "string_type": (N_("Fill this in."), None),
}
_OTHERWISE = N_("This value is not valid.")


@dataclass
class Form(Generic[M]):
    values: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    data: M | None = None

    def refuse(self, page: PageContext, refusal: Invalid) -> None:
        """A service's refusal, next to its field (or above the form)."""
        self.data = None
        self.errors[refusal.field or GENERAL] = page.gettext(refusal.message, **refusal.params)


def error_text(page: PageContext, error: Any) -> str:
    """One pydantic error in the page's language."""
    kind, context = error["type"], error.get("ctx") or {}
    if kind == MSGID_ERROR:
        msgid = error["msg"]  # domain.wording.invalid: the message is a msgid
        return page.gettext(msgid, **context)
    if kind == "string_too_short":
        minimum = context.get("min_length", 1)
        return (
            page.gettext("Fill this in.")
            if minimum <= 1
            else page.gettext("At least %(value)s characters.", value=minimum)
        )
    msgid, key = _MESSAGES.get(kind, (_OTHERWISE, None))
    return page.gettext(msgid, **({"value": context.get(key)} if key else {}))


def errors_of(page: PageContext, exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """Field name (the first step of each error's location) -> the first error about it."""
    found: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error["loc"] if not isinstance(part, int)]
        name = prefix + (loc[0] if loc else GENERAL)
        found.setdefault(name, error_text(page, error))
    return found


def _kind(annotation: Any) -> str:
    """How a field is posted: "list", "bool", "optional" or "plain"."""
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple) or annotation in (list, set, tuple):
        return "list"
    if annotation is bool:
        return "bool"
    if origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        return "list" if others and _kind(others[0]) == "list" else "optional"
    return "plain"


def _text(value: object) -> str:
    # a file where text belongs reads as nothing; NUL, which PostgreSQL cannot store, goes
    return value.replace("\x00", "") if isinstance(value, str) else ""


def values_for(model: type[BaseModel], posted: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        kind = _kind(info.annotation)
        if kind == "list":
            items = [_text(v).strip() for v in posted.getlist(name) if _text(v).strip()]
            if name in posted or items:
                values[name] = items
        elif kind == "bool":
            values[name] = posted.get(name) in ("on", "true", "1", "yes")
        elif name in posted:
            value = _text(posted.get(name))
            values[name] = None if kind == "optional" and not value.strip() else value
    return values


async def read_form(page: PageContext, model: type[M], **fixed: Any) -> Form[M]:
    """The posted form as `model` (with `fixed` values the route decides, such as an id)."""
    values = values_for(model, await page.request.form()) | fixed
    try:
        return Form(values, data=model.model_validate(values))
    except ValidationError as exc:
        return Form(values, errors=errors_of(page, exc))
