"""`Idempotency-Key` on every POST of the API (infra/idempotency.py keeps the keys).

A route that creates something takes `OnceDep` and goes:

    if (first := await once.replay(body)) is not None:
        return first                        # the first answer, byte for byte; nothing done
    ... do it ...
    response = await once.answer(201, out)  # kept with the effect, in the same transaction
    await db.commit()
    return response
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel

from infra import idempotency
from infra.models import ApiToken
from web.api_v1.auth import WriterDep
from web.deps import SessionDep
from web.problems import IDEMPOTENCY_KEY_REUSED, ApiError

REPLAYED = "Idempotent-Replayed"
KEY_DESCRIPTION = (
    "Makes the request safe to retry: the same key with the same body within 72 hours answers the "
    "first request's status and body again (with `Idempotent-Replayed: true`) and does nothing twice, "
    "also while the first is still running. The same key with another body is 422. Keys are per token."
)


class Once:
    def __init__(self, request: Request, db: SessionDep, token: ApiToken, key: str | None) -> None:
        self._request = request
        self._db = db
        self._token = token
        self.key = key

    @staticmethod
    def effect_key() -> str:
        """A fresh key for the service's own dedup (a message's idempotency_key): the request's
        key is kept here, with the effect, so after it expires the same key does something new."""
        return f"api-{uuid.uuid4()}"

    async def replay(self, body: BaseModel | None) -> Response | None:
        """None: go on (the key, if one was sent, is held until this request's transaction ends).
        Else the first request's answer."""
        if self.key is None:
            return None
        request = [self._request.method, self._request.url.path, body.model_dump(mode="json") if body else None]
        fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).digest()
        try:
            first = await idempotency.claim(self._db, self._token.id, self.key, fingerprint)
        except idempotency.KeyReused:
            raise ApiError(
                422, "This Idempotency-Key was used for another request.", type=IDEMPOTENCY_KEY_REUSED
            ) from None
        if first is None:
            return None
        return Response(first.body, first.status, media_type="application/json", headers={REPLAYED: "true"})

    async def answer(self, status: int, body: BaseModel) -> Response:
        """The response, kept under the key (if any) in the request's transaction: commit next."""
        content = body.model_dump_json()
        if self.key is not None:
            await idempotency.answer(self._db, self._token.id, self.key, status, content)
        return Response(content, status, media_type="application/json")


async def once(
    request: Request,
    db: SessionDep,
    token: WriterDep,
    idempotency_key: Annotated[
        str | None,
        Header(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$", description=KEY_DESCRIPTION),
    ] = None,
) -> Once:
    return Once(request, db, token, idempotency_key)


OnceDep = Annotated[Once, Depends(once)]
