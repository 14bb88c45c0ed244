"""Metrics and correlation at the HTTP edge: every request gets a correlation id (the caller's
`X-Request-ID` when it is a sane one) and is counted by route template and status; `GET /metrics`
serves the Prometheus exposition of this api process, with the database gauges read at scrape
time (infra/metrics.py). It answers only a bearer of METRICS_TOKEN or, without a token, only a
caller on this machine: put it behind the internal network either way."""

from __future__ import annotations

import hmac
import re
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra import metrics
from infra.logs import correlated, new_correlation_id
from web.problems import problem

router = APIRouter(include_in_schema=False)
REQUEST_ID = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOOPBACK = {"127.0.0.1", "::1"}
# Realtime streams live for hours: counted on arrival and passed straight through, so the
# thousands held open keep no frame of ours and stay out of the latency histogram.
STREAMS = "/events"


class RequestMetrics:
    """Pure ASGI (no per-request task or body buffering on the webhook hot path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == STREAMS:
            metrics.HTTP_REQUESTS.labels(route=STREAMS, status="stream").inc()
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        cid = given if _SANE_ID.fullmatch(given) else new_correlation_id()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID.encode(), cid.encode())]
            await send(message)

        began = time.perf_counter()
        try:
            with correlated(cid):
                await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics.HTTP_REQUESTS.labels(route=route, status=str(status)).inc()
            metrics.HTTP_LATENCY.labels(route=route).observe(time.perf_counter() - began)


@router.get("/metrics")
async def scrape(request: Request) -> Response:
    token = request.app.state.settings.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            return problem(401, "Unauthorized", "Send the metrics token as a bearer token.")
    elif request.client is None or request.client.host not in LOOPBACK:
        return problem(404, "Not Found")
    async with request.app.state.sessionmaker() as db:
        await metrics.refresh_database_gauges(db)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
