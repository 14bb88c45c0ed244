"""Settings -> Audit log: every action of the audit trail, filtered by actor, action,
conversation and days, newest first by cursor, and the same as CSV (supervisors and admins)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy import func, select

from infra.models import Operator
from services import audit
from services.audit import AuditQuery
from web.deps import SessionDep, SupervisorPage
from web.forms import errors_of, values_for
from web.settings.nav import render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings")
# cells a spreadsheet would run as a formula get a leading apostrophe (CSV injection)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _query(page: PageContext) -> tuple[AuditQuery, dict, dict[str, str]]:
    values = values_for(AuditQuery, page.request.query_params)
    values = {k: v for k, v in values.items() if v not in (None, "")}
    try:
        return AuditQuery.model_validate(values), values, {}
    except ValidationError as exc:
        return AuditQuery(), values, errors_of(page, exc)


@router.get("/audit", name="settings_audit")
async def audit_log(page: SupervisorPage, db: SessionDep) -> Response:
    query, values, errors = _query(page)
    rows, cursor = await audit.audit_page(db, query, page.formats.timezone)
    actors = (
        await db.execute(select(Operator.id, Operator.display_name).order_by(func.lower(Operator.display_name)))
    ).all()
    filters = {k: v for k, v in values.items() if k != "before"}
    context = {
        "rows": rows,
        "next_cursor": cursor,
        "filters": filters,
        "first_page": query.before is None,
        "errors": errors,
        "actor_options": [(a.id, a.display_name) for a in actors],
        "actions": await audit.known_actions(db),
        "export_query": urlencode(filters),
    }
    return render_settings(page, "settings/audit.html", context, status_code=422 if errors else 200)


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@router.get("/audit.csv", name="settings_audit_csv")
async def audit_csv(page: SupervisorPage, db: SessionDep) -> Response:
    query, _, errors = _query(page)
    if errors:
        return await audit_log(page, db)
    filters = query.model_dump(mode="json", exclude_none=True)
    audit.record(db, "audit.exported", operator_id=page.operator.id, details={"filters": filters})
    await db.commit()
    zone = page.formats.timezone

    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        out = csv.writer(buffer)
        out.writerow(["id", "time", "actor_kind", "actor_id", "actor", "action", "conversation_id", "details"])
        async for row in audit.audit_rows(db, query, zone):
            e = row.event
            details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
            out.writerow(
                [
                    _cell(v)
                    for v in (
                        e.id,
                        e.created_at.astimezone(UTC).isoformat(),
                        e.actor_kind,
                        e.actor_operator_id,
                        row.actor_name,
                        e.action,
                        e.conversation_id,
                        details,
                    )
                ]
            )
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    name = f"audit-{datetime.now(UTC):%Y%m%d-%H%M}.csv"
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
