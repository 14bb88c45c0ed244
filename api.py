"""FastAPI app: cabinet pages, REST API v1, channel webhooks, SSE streams.

`uvicorn api:app`. Connections are made in the lifespan, never at import time.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.routing import Route

from channels.registry import build_adapters
from infra.db import asyncpg_dsn, make_engine, make_sessionmaker, warm_pool
from infra.geoip import GeoIp
from infra.logs import configure as configure_logging
from infra.mail import Mailer
from infra.realtime import Hub
from infra.security import CredentialBox
from infra.settings import Settings, get_settings
from infra.temporal import TemporalGateway
from services.button_answers import ButtonAnswers
from services.typing_indicator import TypingThrottle
from web import api_v1, auth, cabinet, docs, invites, metrics, problems, settings as settings_pages, webhooks, widget
from web.api_v1.docs import install_openapi
from web.api_v1.limits import BodyLimits
from web.events import EventStream
from web.presence import StreamPresence

log = logging.getLogger("switchboard.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        engine = make_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.temporal = TemporalGateway(settings)
        if settings.credentials_key is None:
            raise RuntimeError("CREDENTIALS_KEY is not set (make run generates one into DATA_DIR)")
        app.state.credential_box = CredentialBox(settings.credentials_key.get_secret_value())
        app.state.inbox_cache = {}
        # IP -> region (GeoIP, domain.routing.RegionResolver): the widget's visitors are routed by
        # it, and the region rules' tester takes an IP
        app.state.region_resolver = GeoIp()
        app.state.mailer = Mailer.from_settings(settings)
        await warm_pool(engine, settings.db_pool_size)
        app.state.hub = Hub(engine, asyncpg_dsn(settings.database_url))
        await app.state.hub.start()
        app.state.presence = StreamPresence(app.state.sessionmaker)
        app.state.presence.start()
        _settle_garbage_collector()
        app.state.button_answers = ButtonAnswers()
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=10)) as http:
            app.state.adapters = {kind.value: adapter for kind, adapter in build_adapters(http, settings).items()}
            app.state.typing = TypingThrottle(app.state.adapters)
            try:
                yield
            finally:
                await app.state.button_answers.drain()
                await app.state.hub.stop()
                await app.state.presence.stop()
                await engine.dispose()

    # /docs and /redoc come from web.docs, with assets we serve instead of a CDN's
    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    app.add_middleware(metrics.RequestMetrics)
    app.add_middleware(BodyLimits, prefix=api_v1.PREFIX)
    install_openapi(app, api_v1.PREFIX)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    app.include_router(docs.router)
    # the schema is the integrators' (/api/v1, the providers' webhooks, health): pages stay out
    for pages in (auth.router, invites.router, cabinet.router, settings_pages.router):
        app.include_router(pages, include_in_schema=False)
    app.include_router(webhooks.router)
    app.include_router(metrics.router)
    app.include_router(api_v1.router)
    app.include_router(widget.router)
    app.router.routes.append(Route("/events", EventStream(), methods=["GET"]))
    app.router.routes.append(Route(f"{widget.PREFIX}/events", widget.stream, methods=["GET"]))

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """PostgreSQL and Temporal answer; 503 names the part that does not."""
        failing: dict[str, str] = {}
        try:
            async with asyncio.timeout(2):
                async with app.state.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            failing["postgres"] = type(exc).__name__
        try:
            await app.state.temporal.check()
        except Exception as exc:  # noqa: BLE001
            failing["temporal"] = type(exc).__name__
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app


API_DESCRIPTION = """\
The REST API v1 (`/api/v1`) for integrators.

**Authentication**: `Authorization: Bearer sb_...` with a token an admin created; it sees the
conversations of its branches (or of all) and changes them only if it is read-write. Cabinet
sessions do not work here, and tokens do not work on the cabinet's pages.

**Errors**: every refusal is RFC 9457 `application/problem+json` (`type`, `title`, `status`,
`detail`; `errors` with a JSON pointer, parameter or header per field that did not validate).
An id outside the token's branches is 404, as if it did not exist.

**Idempotency**: every POST takes an `Idempotency-Key` header (up to 200 characters, per token).
The same key with the same body within 72 hours answers the first request's status and body again
without doing anything twice, also while the first is still running (the second waits for it);
the same key with another body is 422.

**Rate limits**: per token; past its budget a request is answered 429 with `Retry-After`.

**Pagination**: lists answer `{"items": [...], "next_cursor": "..."}`; pass `cursor=<next_cursor>`
for the next page, until `next_cursor` is null. Cursors are opaque and stay valid while rows
change (keyset pagination, never offsets).
"""


def _settle_garbage_collector() -> None:
    """An api process holds thousands of long-lived streams, and with the default thresholds the
    collector kept scanning them under fan-out load (a bare stream like web/events.py, 30
    events/s to 10,000 streams: p99 500 ms, 47 ms with this). Keep what startup made out of its
    scans and collect the young generation less often."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


app = create_app()
