"""Outgoing webhook endpoints and "Send to B24" through the REST API, over real HTTP: a token of
all branches manages endpoints (a branch's token is refused: endpoints see every branch), the
secret is answered once and an Idempotency-Key replays it without a second endpoint; a task is
asked for in Bitrix24 and becomes ready, within the token's branches only."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from domain.enums import ActorKind
from domain.ids import webhook_endpoint_workflow_id
from infra.models import AuditEvent, WebhookEndpoint
from infra.security import CredentialBox
from services import bitrix24
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.bitrix24 import FakeBitrix24
from tests.integration.api_support import assert_problem, client, make_scene
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker

NEW = {"name": "CRM", "url": "https://crm.example/hooks", "events": ["message.created", "conversation.created"]}


async def _endpoints(factory) -> int:
    async with factory() as db:
        return await db.scalar(select(func.count()).select_from(WebhookEndpoint))


async def test_a_token_of_all_branches_manages_endpoints_and_a_branchs_token_may_not(
    clean_db, live_api, temporal_client
):
    scene = await make_scene(clean_db)
    async with client(live_api.url, scene.writer) as branch_token, client(live_api.url, scene.reader) as reader:
        assert_problem(await branch_token.get("/api/v1/webhooks"), 403)
        assert_problem(await branch_token.post("/api/v1/webhooks", json=NEW), 403)
        assert_problem(await reader.post("/api/v1/webhooks", json=NEW), 403)
    assert await _endpoints(clean_db) == 0

    async with client(live_api.url, scene.everything) as api:
        refused = assert_problem(await api.post("/api/v1/webhooks", json={**NEW, "url": "ftp://crm"}), 422)
        assert "http://" in refused["detail"]
        assert_problem(await api.post("/api/v1/webhooks", json={**NEW, "events": ["nothing.happened"]}), 422)
        assert await _endpoints(clean_db) == 0

        key = {"Idempotency-Key": "crm-endpoint-1"}
        created = await api.post("/api/v1/webhooks", json=NEW, headers=key)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_") and body["events"] == ["conversation.created", "message.created"]
        again = await api.post("/api/v1/webhooks", json=NEW, headers=key)
        assert again.status_code == 201 and again.json() == body and again.headers["idempotent-replayed"] == "true"
        assert await _endpoints(clean_db) == 1
        endpoint = f"/api/v1/webhooks/{body['id']}"
        try:
            listed = (await api.get("/api/v1/webhooks")).json()
            assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]
            assert "secret" not in (await api.get(endpoint)).json()

            changed = await api.patch(endpoint, json={"events": ["message.status_changed"]})
            assert changed.status_code == 200 and changed.json()["events"] == ["message.status_changed"]
            assert changed.json()["url"] == NEW["url"]

            paused = await api.post(f"{endpoint}/pause")
            assert paused.json()["paused"] is True and paused.json()["pause_reason"]
            unknown = assert_problem(await api.post(f"{endpoint}/redeliver", json={"event_id": 424242}), 422)
            assert "not in this endpoint" in unknown["detail"]
            assert_problem(await api.post(f"{endpoint}/redeliver", json={}), 422)
            since = await api.post(f"{endpoint}/redeliver", json={"since": "2026-01-01T00:00:00Z"})
            assert since.status_code == 200 and since.json() == {"queued": 0}
            assert (await api.get(endpoint)).json()["paused"] is False  # a redelivery resumes
            assert (await api.post(f"{endpoint}/pause")).status_code == 200
            assert (await api.post(f"{endpoint}/resume")).json()["paused"] is False

            rotated = await api.post(f"{endpoint}/secret")
            assert rotated.status_code == 200 and rotated.json()["secret"] not in (body["secret"], None)
            async with clean_db() as db:
                stored = await db.get(WebhookEndpoint, body["id"])
            secrets = CredentialBox(TEST_CREDENTIALS_KEY).open(stored.secrets_encrypted)["secrets"]
            assert [s["secret"] for s in secrets] == [rotated.json()["secret"], body["secret"]]

            assert (await api.get(f"{endpoint}/deliveries")).json() == []
            assert (await api.delete(endpoint)).status_code == 204
            assert_problem(await api.get(endpoint), 404)
        finally:
            await temporal_client.get_workflow_handle(webhook_endpoint_workflow_id(body["id"])).terminate()
    async with clean_db() as db:
        actors = set((await db.execute(select(AuditEvent.action, AuditEvent.actor_kind))).all())
    assert ("webhook.created", ActorKind.INTEGRATION) in actors and ("webhook.deleted", ActorKind.INTEGRATION) in actors


async def test_send_to_b24_through_the_api_makes_the_task_within_the_tokens_branches(
    clean_db, live_api, temporal_client, app_settings
):
    scene = await make_scene(clean_db)
    async with (
        FakeBitrix24() as portal,
        httpx.AsyncClient() as http,
        build_worker(temporal_client, app_settings, build_activities(clean_db, app_settings, http)),
        client(live_api.url, scene.writer) as api,
    ):
        path = f"/api/v1/conversations/{scene.my_pool}/bitrix24-task"
        assert (await api.get(path)).json()["status"] == "none"
        refused = assert_problem(await api.post(path), 422)
        assert "not connected" in refused["detail"]
        async with clean_db() as db, db.begin():
            data = bitrix24.ConnectionInput(
                owner=f"branch:{scene.mine}", webhook_url=portal.webhook_url, responsible_id=7
            )
            await bitrix24.connect(db, CredentialBox(TEST_CREDENTIALS_KEY), data, operator_id=None)

        asked = await api.post(path, headers={"Idempotency-Key": "b24-1"})
        assert asked.status_code == 202 and asked.json()["status"] == "pending"
        await wait_until(lambda: _status(api, path, "ready"), timeout=30)
        ready = (await api.get(path)).json()
        assert ready["task_id"] and ready["task_url"].startswith(portal.portal)
        assert (await api.post(path)).json()["status"] == "ready"  # asked again: the same task
        assert len(portal.tasks()) == 1

        other = f"/api/v1/conversations/{scene.other_pool}/bitrix24-task"
        assert_problem(await api.post(other), 404)
        assert_problem(await api.get(other), 404)


async def _status(api, path: str, wanted: str) -> bool:
    return (await api.get(path)).json()["status"] == wanted
