"""Settings -> Health: PostgreSQL, Temporal, the worker's heartbeat, the outbox, dead letters,
outgoing messages, each inbox's connection and each outgoing webhook endpoint, each against its
threshold; the same data as JSON at /settings/health.json for monitoring (a supervisor's or
admin's session; status 503 when anything is red). Parked outbox rows are listed with a Retry."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from infra.temporal import WorkflowStarter
from services import health, outbox
from services.errors import Invalid
from services.health import Level
from web.deps import CsrfChecked, SessionDep, SupervisorPage
from web.settings.nav import Id, done, render_settings
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


@router.post("/health/outbox/{outbox_id}/retry", dependencies=[CsrfChecked])
async def retry_parked(page: SupervisorPage, db: SessionDep, outbox_id: Id) -> Response:
    try:
        await outbox.retry_parked(db, page.operator, outbox_id)
    except Invalid as refusal:
        return done(page, "/settings/health", page.gettext(refusal.message, **refusal.params))
    await db.commit()
    return done(page, "/settings/health", page.gettext("The change is handed to its conversation again."))
