"""Auto-offline over the real parts: the live api stamps the operators whose `/events` stream is
open, and the sweep (PresenceSweepWorkflow on the session's Temporal dev server, with the real
worker's activities) takes offline whoever has had none open for the admin's setting, through
the status switch: audited as the system's, announced on the stream, shown on the board."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from domain.enums import OperatorStatus
from domain.presence import PRESENCE_SWEEP_WORKFLOW, PresenceSweepInput
from infra.models import AuditEvent, Operator
from tests.integration.conftest import wait_until
from tests.integration.realtime_support import open_sse
from tests.integration.settings_support import sign_in
from tests.integration.workspace_support import make_team


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


async def _set_offline_after(team, admin, minutes: int) -> None:
    root = await sign_in(team.base_url, admin["email"], admin["password"])
    answer = await root.post("/settings/operators/presence", {"offline_after_minutes": minutes})
    assert answer.status_code == 303, answer.text


async def _online(team, *names: str) -> dict[str, object]:
    clients = {}
    for name in names:
        client = await team.client(name)
        assert (await client.post("/me/status", {"status": "online"})).status_code == 303
        clients[name] = client
    return clients


async def _away_for(team, minutes: float, *operator_ids: int) -> None:
    """As if their last tab closed, and their status was set, `minutes` ago."""
    then = datetime.now(UTC) - timedelta(minutes=minutes)
    async with team.factory() as db, db.begin():
        await db.execute(
            update(Operator).where(Operator.id.in_(operator_ids)).values(last_seen_at=then, status_changed_at=then)
        )


async def _status(team, operator_id: int) -> OperatorStatus:
    async with team.factory() as db:
        return await db.scalar(select(Operator.status).where(Operator.id == operator_id))


async def _seen_lately(team, operator_id: int) -> bool:
    async with team.factory() as db:
        seen = await db.scalar(select(Operator.last_seen_at).where(Operator.id == operator_id))
    return seen > datetime.now(UTC) - timedelta(seconds=30)


def _stream(client):
    return open_sse(client.http.base_url, "/events", cookies=dict(client.http.cookies))


async def _sweeping(engine_stack, interval: float = 0.5):
    return await engine_stack.client.start_workflow(
        PRESENCE_SWEEP_WORKFLOW,
        PresenceSweepInput(interval_seconds=interval),
        id=f"presence-{engine_stack.task_queue}",
        task_queue=engine_stack.task_queue,
    )


async def test_an_operator_with_no_open_tab_goes_offline_one_with_a_tab_stays(team, admin, engine_stack):
    await _set_offline_after(team, admin, 2)
    clients = await _online(team, "ann", "bob", "carl")
    boss = await team.client("boss")
    await _away_for(team, 10, team.ann, team.bob, team.carl)
    async with _stream(boss) as board_stream, _stream(clients["bob"]):
        await wait_until(lambda: _seen_lately(team, team.bob), timeout=10)
        # Carl's tab closed a moment ago: within the setting
        async with _stream(clients["carl"]):
            pass
        await wait_until(lambda: _seen_lately(team, team.carl), timeout=10)
        sweep = await _sweeping(engine_stack)
        try:
            await wait_until(lambda: _is(team, team.ann, OperatorStatus.OFFLINE), timeout=30)
        finally:
            await sweep.terminate("test over")
        # the pass that took Ann offline looked at Bob and Carl in the same transaction
        assert await _status(team, team.bob) == OperatorStatus.ONLINE
        assert await _status(team, team.carl) == OperatorStatus.ONLINE
        frames = await board_stream.until(
            lambda f: f.event == "operator.status_changed" and f.data.get("operator_id") == team.ann
        )
        assert frames[-1].data["status"] == "offline"

    board = (await boss.get("/supervisor")).text
    assert re.search(rf'<tr id="operator-{team.ann}" data-status="offline">', board)
    assert re.search(rf'<tr id="operator-{team.bob}" data-status="online">', board)
    async with team.factory() as db:
        entries = (
            await db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.status").order_by(AuditEvent.id))
        ).all()
    by_system = [e for e in entries if e.actor_operator_id is None]
    assert [e.details for e in by_system] == [
        {"from": "online", "to": "offline", "operator_id": team.ann, "reason": "no open tab"}
    ]
    # coming back does not switch them online: they do, as always
    ann = await team.client("ann")
    async with _stream(ann):
        await wait_until(lambda: _seen_lately(team, team.ann), timeout=10)
    assert await _status(team, team.ann) == OperatorStatus.OFFLINE


async def _is(team, operator_id: int, status: OperatorStatus) -> bool:
    return await _status(team, operator_id) == status


async def test_zero_minutes_never_takes_anyone_offline(team, admin, engine_stack):
    await _set_offline_after(team, admin, 0)
    await _online(team, "ann")
    await _away_for(team, 24 * 60, team.ann)
    sweep = await _sweeping(engine_stack)
    first_run = sweep.result_run_id
    try:
        # two passes done (each continues as new): the setting was read and nothing changed
        runs = set()

        async def passes() -> bool:
            runs.add((await sweep.describe()).run_id)
            return len(runs - {first_run}) >= 2

        await wait_until(passes, timeout=30)
    finally:
        await sweep.terminate("test over")
    assert await _status(team, team.ann) == OperatorStatus.ONLINE


async def test_the_setting_is_the_admins_checked_and_audited(team, admin):
    root_page = await (await team.client("ann")).post("/settings/operators/presence", {"offline_after_minutes": 1})
    assert root_page.status_code == 403
    from tests.integration.settings_support import sign_in

    root = await sign_in(team.base_url, admin["email"], admin["password"])
    for junk in ("-1", "1441", "five", ""):
        answer = await root.post("/settings/operators/presence", {"offline_after_minutes": junk})
        assert answer.status_code == 422, junk
        assert 'class="field-error"' in answer.text
    assert 'value="5"' in (await root.get("/settings/operators")).text
    assert (await root.post("/settings/operators/presence", {"offline_after_minutes": 15})).status_code == 303
    assert 'value="15"' in (await root.get("/settings/operators")).text
    async with team.factory() as db:
        changes = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "settings.presence"))).all()
    assert [c.details for c in changes] == [
        {"before": {"offline_after_minutes": 5}, "after": {"offline_after_minutes": 15}}
    ]
