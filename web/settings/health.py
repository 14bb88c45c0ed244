"""Settings -> Health: PostgreSQL, Temporal, the worker's heartbeat, the outbox, dead letters,
outgoing messages and each inbox's connection, each against its threshold; the same data as JSON
at /settings/health.json for monitoring (a supervisor's or admin's session; status 503 when
anything is red)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from infra.temporal import WorkflowStarter
from services import health
from services.health import Level
from web.deps import SupervisorPage
from web.settings.nav import render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings")


async def _report(page: PageContext) -> health.Report:
    app = page.request.app.state

    async def poller_running(inbox_id: int) -> bool:
        starter = WorkflowStarter(await app.temporal.client(), app.settings.temporal_task_queue)
        return await starter.poller_running(inbox_id)

    return await health.report(app.sessionmaker, app.temporal.check, poller_running)


@router.get("/health", name="settings_health")
async def health_page(page: SupervisorPage) -> Response:
    report = await _report(page)
    return render_settings(page, "settings/health.html", {"report": report, "Level": Level})


@router.get("/health.json", name="settings_health_json")
async def health_json(page: SupervisorPage) -> JSONResponse:
    report = await _report(page)
    return JSONResponse(report.as_json(), status_code=503 if report.level == Level.BAD else 200)
