"""Settings -> Outgoing webhooks over real HTTP with a real worker and a receiver on loopback: an
admin adds an endpoint and sees its secret once, an inbound message reaches the receiver signed
with it and shows in the journal, one event and everything since a time are redelivered, delivery
is paused and resumed, the secret rotated; refusals keep nothing; only admins, with CSRF."""

from __future__ import annotations

import hashlib
import hmac
import re
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update
from temporalio.service import RPCError

from domain.enums import OperatorRole
from domain.ids import webhook_endpoint_workflow_id
from infra.models import AuditEvent, Operator, WebhookAttempt, WebhookEndpoint
from services.ingest import ingest
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.conftest import wait_until
from tests.integration.realtime_support import staff as staff_in_russian
from worker import build_activities, build_worker

CSRF = "c"  # realtime_support.staff's sessions
HTML = {"accept": "text/html"}


async def staff(factory, role: OperatorRole) -> tuple[int, str]:
    """A signed-in member of staff who reads the cabinet in English."""
    operator_id, cookie = await staff_in_russian(factory, role)
    async with factory() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == operator_id).values(locale="en"))
    return operator_id, cookie


def signed_by(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    expected = "v1=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, part.strip()) for part in header.split(","))


@asynccontextmanager
async def running_worker(world, temporal_client, app_settings):
    """A worker on the live app's task queue (the page wakes the endpoint's workflow there)."""
    settings = app_settings.model_copy(update={"webhook_retry_schedule": (timedelta(milliseconds=300),)})
    async with (
        httpx.AsyncClient() as http,
        build_worker(temporal_client, settings, build_activities(world.factory, settings, http)),
    ):
        yield


async def _attempts(factory, endpoint_id: int) -> list[WebhookAttempt]:
    async with factory() as db:
        return list(
            (
                await db.scalars(
                    select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id).order_by(WebhookAttempt.id)
                )
            ).all()
        )


async def test_an_admin_adds_an_endpoint_that_receives_redelivers_pauses_and_rotates(
    world, live_api, temporal_client, app_settings
):
    _, cookie = await staff(world.factory, OperatorRole.ADMIN)
    endpoint_id = None
    async with (
        WebhookReceiver() as receiver,
        httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}, headers=HTML) as http,
        running_worker(world, temporal_client, app_settings),
    ):
        try:
            refused = await http.post(
                "/settings/webhooks",
                data={"csrf_token": CSRF, "name": "CRM", "url": "ftp://crm.example", "events": ["message.created"]},
            )
            assert refused.status_code == 422 and "The URL must be an http:// or https:// address." in refused.text

            created = await http.post(
                "/settings/webhooks",
                data={"csrf_token": CSRF, "name": "CRM", "url": receiver.url, "events": ["message.created"]},
            )
            assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
            secret = re.search(r'value="(whsec_[A-Za-z0-9_-]+)"', created.text).group(1)
            async with world.factory() as db:
                endpoint = await db.scalar(select(WebhookEndpoint))
                endpoint_id = endpoint.id
                assert endpoint.events == ["message.created"] and endpoint.inbox_id is None
                assert await db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 1  # the refusal kept none
            page = await http.get(f"/settings/webhooks/{endpoint_id}")
            assert page.status_code == 200 and secret not in page.text and receiver.url in page.text

            await ingest(world.factory, world.event("ann", "Где мой заказ?"))
            await wait_until(lambda: receiver.accepted(), timeout=30)
            first = receiver.accepted()[0]
            assert first.json["type"] == "message.created" and first.json["data"]["text"] == "Где мой заказ?"
            assert signed_by(
                secret, first.headers["x-switchboard-timestamp"], first.body, first.headers["x-switchboard-signature"]
            )
            event_id = int(first.json["id"])
            await wait_until(lambda: _attempts(world.factory, endpoint_id))
            journal = await http.get(f"/settings/webhooks/{endpoint_id}")
            assert f"#{event_id}" in journal.text and "message.created" in journal.text

            again = await http.post(
                f"/settings/webhooks/{endpoint_id}/redeliver", data={"csrf_token": CSRF, "event_id": str(event_id)}
            )
            assert again.status_code == 303
            await wait_until(lambda: len(receiver.accepted()) == 2, timeout=30)
            assert receiver.accepted()[1].json["id"] == str(event_id)

            unknown = await http.post(
                f"/settings/webhooks/{endpoint_id}/redeliver", data={"csrf_token": CSRF, "event_id": "999999"}
            )
            assert unknown.status_code == 422 and "That event is not in this endpoint" in unknown.text

            paused = await http.post(f"/settings/webhooks/{endpoint_id}/pause", data={"csrf_token": CSRF})
            assert paused.status_code == 303
            assert "Paused by an admin." in (await http.get(f"/settings/webhooks/{endpoint_id}")).text
            await ingest(world.factory, world.event("bob", "Second"))
            resumed = await http.post(f"/settings/webhooks/{endpoint_id}/resume", data={"csrf_token": CSRF})
            assert resumed.status_code == 303
            await wait_until(lambda: any(r.json["data"].get("text") == "Second" for r in receiver.accepted()))

            # the browser's datetime-local, in the admin's timezone (UTC here): both events again
            since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
            count = len(receiver.accepted())
            bulk = await http.post(
                f"/settings/webhooks/{endpoint_id}/redeliver", data={"csrf_token": CSRF, "since": since}
            )
            assert bulk.status_code == 303
            await wait_until(lambda: len(receiver.accepted()) == count + 2, timeout=30)

            rotated = await http.post(f"/settings/webhooks/{endpoint_id}/rotate", data={"csrf_token": CSRF})
            assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
            new_secret = re.search(r'value="(whsec_[A-Za-z0-9_-]+)"', rotated.text).group(1)
            assert new_secret != secret

            renamed = await http.post(
                f"/settings/webhooks/{endpoint_id}",
                data={"csrf_token": CSRF, "name": "CRM 2", "url": receiver.url, "events": []},
            )
            assert renamed.status_code == 422 and "Choose at least one event." in renamed.text
        finally:
            if endpoint_id is not None:
                with suppress(RPCError):
                    await temporal_client.get_workflow_handle(webhook_endpoint_workflow_id(endpoint_id)).terminate()
    async with world.factory() as db:
        actions = set((await db.scalars(select(AuditEvent.action))).all())
    assert {"webhook.created", "webhook.redelivered", "webhook.paused", "webhook.secret_rotated"} <= actions


async def test_only_admins_with_the_forms_token_manage_endpoints(world, live_api):
    _, supervisor = await staff(world.factory, OperatorRole.SUPERVISOR)
    _, admin = await staff(world.factory, OperatorRole.ADMIN)
    form = {"csrf_token": CSRF, "name": "x", "url": "https://example.com/h", "events": ["message.created"]}
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": supervisor}, headers=HTML) as http:
        assert (await http.get("/settings/webhooks")).status_code == 403
        assert (await http.post("/settings/webhooks", data=form)).status_code == 403
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": admin}, headers=HTML) as http:
        assert (await http.post("/settings/webhooks", data={**form, "csrf_token": "forged"})).status_code == 403
        assert (await http.get("/settings/webhooks/424242")).status_code == 404
    async with world.factory() as db:
        assert await db.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
