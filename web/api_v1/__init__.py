"""The REST API v1 under /api/v1, for integrators: token-authenticated (auth.py), JSON in and
out, every refusal problem+json (web/problems.py), described at /docs.

Each module holds the routes of one resource; `router` gathers them for api.py with what every
route shares: the token dependency and the documented error answers.
"""

from fastapi import APIRouter, Depends

from web.api_v1 import api_channel, bitrix24, contacts, conversations, directory, labels, messages, tokens, webhooks
from web.api_v1.auth import api_token
from web.api_v1.docs import COMMON_ERRORS

PREFIX = "/api/v1"

router = APIRouter(prefix=PREFIX, dependencies=[Depends(api_token)], responses=COMMON_ERRORS)
for module in (conversations, messages, contacts, directory, tokens, labels, webhooks, bitrix24, api_channel):
    router.include_router(module.router)
