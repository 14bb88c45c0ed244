"""What a provider's update may look like before a parser reads it: bounded JSON, typed models of
the parts we use, and the error for an update that does not fit them.

Parsers read provider JSON only through these models, so a field of the wrong type or out of
range is an `UnreadableUpdate`, never a TypeError, OverflowError or a value the database refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from channels.base import MalformedUpdate
from domain.contracts import INT64_MAX

# The largest legitimate update (a 4096-character text escaped as \uXXXX, its entities, the
# message it replies to and a keyboard) stays well under 1 MiB; anything bigger is not one.
MAX_BODY_BYTES = 1024 * 1024

# datetime's range (year 9999), so no provider time can overflow a conversion
UNIX_SECONDS_MAX = 253_402_300_799


class UnreadableUpdate(MalformedUpdate):
    """An update of this provider (its envelope is there) with a field of the wrong type or out
    of range. A redelivery would not parse either, so a webhook acknowledges it."""


_JSON = TypeAdapter(Any)


def load_json(body: bytes) -> Any:
    """JSON without recursion in Python: pydantic's parser refuses nesting past 200 levels (no
    update nests past a dozen) in microseconds, where `json.loads` recurses until it fails.
    A NaN or Infinity it lets through is refused by the models of the fields we read."""
    try:
        return _JSON.validate_json(body)
    except ValidationError as exc:
        raise MalformedUpdate(f"not JSON: {exc.errors(include_url=False, include_input=False)[0]['msg']}") from None


@contextmanager
def reading(update: str) -> Iterator[None]:
    """Turns a payload that does not fit the models (or an event the contract refuses) into an
    `UnreadableUpdate` naming `update`."""
    try:
        yield
    except ValidationError as exc:
        raise UnreadableUpdate(f"{update}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or "payload"
    return f"{where}: {error['msg']} ({exc.error_count()} problem{'s' if exc.error_count() > 1 else ''})"


class ProviderModel(BaseModel):
    """The part of a provider object a parser reads; other fields are ignored, read ones strict."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
UnixSeconds = Annotated[int, Field(ge=0, le=UNIX_SECONDS_MAX)]
UnixMillis = Annotated[int, Field(ge=0, le=UNIX_SECONDS_MAX * 1000)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
