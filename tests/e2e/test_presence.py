"""An open cabinet tab keeps its operator present, whichever page it shows: a settings page
(which has no live list of its own) opens the event stream too, and the api stamps the
operator as seen (services/presence.py); the sign-in page does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from domain.enums import OperatorRole
from infra.models import Operator
from tests.e2e.test_workspace import _open_as
from tests.integration.conftest import wait_until

STREAM_OPEN = "Boolean(window.switchboardStream) && window.switchboardStream.readyState === 1"


async def test_a_settings_tab_keeps_its_operator_seen(browser, live_api, staff, clean_db):
    anna = staff[OperatorRole.OPERATOR]
    context, inbox = await _open_as(browser, live_api, anna.email)
    try:
        await inbox.close()  # no tab of hers is open now
        long_ago = datetime.now(UTC) - timedelta(minutes=30)
        async with clean_db() as db, db.begin():
            await db.execute(update(Operator).where(Operator.id == anna.id).values(last_seen_at=long_ago))

        async def seen_lately() -> bool:
            async with clean_db() as db:
                seen = await db.scalar(select(Operator.last_seen_at).where(Operator.id == anna.id))
            return seen > datetime.now(UTC) - timedelta(minutes=1)

        profile = await context.new_page()
        await profile.goto(f"{live_api.url}/settings/profile")
        await wait_until(lambda: profile.evaluate(STREAM_OPEN), timeout=10)
        await wait_until(seen_lately, timeout=10)
        await profile.goto(f"{live_api.url}/login")
        assert await profile.evaluate("window.switchboardStream === undefined")
    finally:
        await context.close()
