"""/metrics as Prometheus scrapes it, who may scrape it, and the correlation id that follows a
customer's message from the provider's webhook into the outgoing webhook's delivery journal."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import select

from infra.models import Message, WebhookAttempt
from infra.temporal import WorkflowStarter
from tests.conftest import LiveServer
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.conftest import wait_until
from tests.integration.test_outgoing_webhooks import _endpoint
from tests.integration.test_webhooks import SECRET, update
from worker import build_activities, build_worker


async def _len_at_least(rows, n: int) -> bool:
    return len(await rows) >= n


def _samples(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


async def test_metrics_count_requests_and_read_the_queues_from_the_database(world, live_api):
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    async with httpx.AsyncClient() as http:
        assert (await http.post(url, json=update(1), headers=SECRET)).status_code == 200
        unreadable = {"update_id": 5, "message": {"message_id": 1, "date": 1e20, "chat": {"id": 1}}}
        assert (await http.post(url, json=unreadable, headers=SECRET)).status_code == 200  # acknowledged
        assert (
            await http.post(url, json=update(2), headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
        ).status_code == 401
        scraped = await http.get(f"{live_api.url}/metrics")  # from this machine: allowed without a token
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    families = _samples(scraped.text)
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["switchboard_http_requests"]
        if s.name.endswith("_total")
    }
    assert requests[("/webhooks/{channel}/{inbox_id}", "200")] >= 1
    assert requests[("/webhooks/{channel}/{inbox_id}", "401")] >= 1
    failures = {s.labels["channel"]: s.value for s in families["switchboard_channel_webhook_verification_failures"]}
    assert failures["telegram"] >= 1
    skipped = {s.labels["channel"]: s.value for s in families["switchboard_channel_updates_skipped"]}
    assert skipped["telegram"] >= 1  # acknowledged, logged and counted
    assert [s.value for s in families["switchboard_outbox_rows"]] == [1.0]  # the new conversation's notice
    assert any(s.labels.get("channel") == "telegram" for s in families["switchboard_inbound_messages"])


async def test_metrics_need_the_token_when_one_is_set_and_refuse_other_machines_without_one(app_settings):
    from api import create_app

    with_token = LiveServer(
        create_app(app_settings.model_copy(update={"metrics_token": SecretStr("scrape-me")}))
    ).start()
    try:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{with_token.url}/metrics")).status_code == 401
            wrong = await http.get(f"{with_token.url}/metrics", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            right = await http.get(f"{with_token.url}/metrics", headers={"Authorization": "Bearer scrape-me"})
            assert right.status_code == 200 and "switchboard_outbox_rows" in right.text
    finally:
        with_token.stop()
    app = create_app(app_settings)
    app.state.settings = app_settings
    transport = httpx.ASGITransport(app=app, client=("10.20.30.40", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_the_webhook_requests_correlation_id_reaches_the_outgoing_webhook_journal(
    world, live_api, temporal_client, app_settings, task_queue
):
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    async with WebhookReceiver() as receiver, httpx.AsyncClient() as http:
        endpoint_id, _ = await _endpoint(world.factory, receiver.url)
        sent = await http.post(
            f"{live_api.url}/webhooks/telegram/{world.inbox_id}",
            json=update(7, "where is my order?"),
            headers={**SECRET, "X-Request-ID": "tg-update-7"},
        )
        assert sent.status_code == 200 and sent.headers["x-request-id"] == "tg-update-7"
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            await WorkflowStarter(temporal_client, task_queue).wake_webhook_endpoint(endpoint_id)

            async def journal() -> list:
                async with world.factory() as db:
                    query = select(WebhookAttempt.event_type, WebhookAttempt.correlation_id).where(
                        WebhookAttempt.endpoint_id == endpoint_id
                    )
                    return (await db.execute(query)).all()

            await wait_until(lambda: _len_at_least(journal(), 2))  # conversation.created, message.created
            recorded = await journal()
    async with world.factory() as db:
        stored = await db.scalar(select(Message.correlation_id).where(Message.text == "where is my order?"))
    assert stored == "tg-update-7"
    assert ("message.created", "tg-update-7") in recorded
    message_request = next(r for r in receiver.accepted() if r.json["type"] == "message.created")
    assert message_request.headers["x-switchboard-correlation-id"] == "tg-update-7"
