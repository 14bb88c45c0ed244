"""Settings -> Audit log (filters, cursor pages, CSV export) and Health (each check against its
threshold, the worker's heartbeat, parked outbox rows and their retry, outgoing webhook
endpoints, inbox webhooks, the same data as JSON) over real HTTP."""

import csv
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, SenderKind
from domain.webhooks import DeliveryState
from infra.models import (
    AuditEvent,
    Contact,
    ContactChat,
    ContactIdentity,
    Conversation,
    Inbox,
    Message,
    Operator,
    OutboxEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from services import audit, health
from tests.integration.settings_support import add_parked_row, add_staff, sign_in


async def _seed_trail(clean_db, admin_email: str) -> tuple[int, int]:
    async with clean_db() as db, db.begin():
        admin_id = await db.scalar(select(Operator.id).where(Operator.email == admin_email))
        anna_id = await add_staff(clean_db, OperatorRole.OPERATOR, "anna@example.com", "Анна")
    async with clean_db() as db, db.begin():
        for n in range(60):
            audit.record(db, "label.created", operator_id=admin_id, details={"after": {"name": f"=HYPERLINK({n})"}})
        audit.record(db, "operator.status", operator_id=anna_id, details={"from": "offline", "to": "online"})
        audit.record(db, "conversation.escalation_exhausted", details={"timed_out": [anna_id]})
    return admin_id, anna_id


async def test_the_audit_log_filters_pages_by_cursor_and_exports_csv(live_api, admin, clean_db):
    admin_id, anna_id = await _seed_trail(clean_db, admin["email"])
    supervisor = await add_staff(clean_db, OperatorRole.SUPERVISOR, "boris@example.com", "Борис")
    client = await sign_in(live_api.url, "boris@example.com")
    page = await client.get("/settings/audit")
    assert page.status_code == 200 and page.text.count("<code>label.created</code>") == 47  # 50 a page
    older = page.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    page = await client.get(older)
    assert page.text.count("<code>label.created</code>") == 13 and 'rel="next"' not in page.text

    page = await client.get("/settings/audit", params={"actor": anna_id})
    assert "<code>operator.status</code>" in page.text and "label.created</code>" not in page.text
    page = await client.get("/settings/audit", params={"action": "conversation.escalation_exhausted"})
    assert "Система" in page.text and "<code>label.created</code>" not in page.text
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    page = await client.get("/settings/audit", params={"since": tomorrow})
    assert "Ничего не найдено." in page.text
    page = await client.get("/settings/audit", params={"since": tomorrow, "until": "2020-01-01", "conversation": "x"})
    assert page.status_code == 422 and "Введите целое число." in page.text

    export = await client.get("/settings/audit.csv", params={"actor": admin_id})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.text)))
    assert rows[0][:6] == ["id", "time", "actor_kind", "actor_id", "actor", "action"]
    assert len(rows) == 61 and {r[5] for r in rows[1:]} == {"label.created"}
    assert all(r[7].startswith('{"after"') for r in rows[1:])  # JSON details, not a formula
    async with clean_db() as db:
        exported = await db.scalar(select(AuditEvent).where(AuditEvent.action == "audit.exported"))
    assert exported.actor_operator_id == supervisor and exported.details == {"filters": {"actor": admin_id}}
    await client.http.aclose()


def test_csv_cells_that_a_spreadsheet_would_run_are_defused():
    from web.settings.audit import _cell

    assert [_cell(v) for v in ("=1+1", "+7", "-2", "@SUM", "plain", None, 5)] == [
        "'=1+1", "'+7", "'-2", "'@SUM", "plain", "", "5"
    ]  # fmt: skip


async def test_operators_cannot_read_the_audit_log_or_health(live_api, admin, clean_db):
    await add_staff(clean_db, OperatorRole.OPERATOR, "anna@example.com", "Анна")
    client = await sign_in(live_api.url, "anna@example.com")
    for path in ("/settings/audit", "/settings/audit.csv", "/settings/health", "/settings/health.json"):
        assert (await client.get(path)).status_code == 403, path
    await client.http.aclose()


async def test_health_judges_each_part_and_says_so_as_json(live_api, admin, clean_db):
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    answer = await client.get("/settings/health.json")
    report = answer.json()
    assert report["checks"]["postgres"]["level"] == "ok" and report["checks"]["temporal"]["level"] == "ok"
    assert report["checks"]["worker"]["level"] == "bad"  # no worker has ever stamped
    assert answer.status_code == 503 and report["status"] == "bad"

    now = datetime.now(UTC)
    await health.beat(clean_db, worker="host:1", task_queue="switchboard", started_at=now)
    async with clean_db() as db, db.begin():
        inbox = Inbox(name="Бот", channel=ChannelKind.TELEGRAM, credentials_encrypted=b"")
        contact = Contact(display_name="Ирина")
        db.add_all([inbox, contact])
        await db.flush()
        identity = ContactIdentity(contact_id=contact.id, channel=ChannelKind.TELEGRAM, provider_user_id="7")
        db.add(identity)
        await db.flush()
        db.add(ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id="7"))
        await db.flush()
        conversation = Conversation(inbox_id=inbox.id, contact_id=contact.id, identity_id=identity.id)
        db.add(conversation)
        await db.flush()
        db.add(OutboxEvent(conversation_id=conversation.id, kind="notice", created_at=now - timedelta(minutes=5)))
        out = {"conversation_id": conversation.id, "inbox_id": inbox.id, "direction": MessageDirection.OUT}
        db.add(Message(**out, sender_kind=SenderKind.SYSTEM, delivery_status=DeliveryStatus.FAILED, text="x"))
        db.add(
            Message(
                **out, sender_kind=SenderKind.SYSTEM, delivery_status=DeliveryStatus.QUEUED, text="y",
                created_at=now - timedelta(seconds=90),
            )
        )  # fmt: skip
    report = (await client.get("/settings/health.json")).json()
    checks = report["checks"]
    assert checks["worker"]["level"] == "ok" and checks["workers"]["value"] == 1
    assert (checks["outbox_depth"]["value"], checks["outbox_oldest"]["level"]) == (1, "bad")
    assert checks["outbox_oldest"]["limits"] == [10.0, 60.0]
    assert (checks["dead_letters"]["value"], checks["dead_letters"]["level"]) == (1, "warn")
    assert (checks["queued"]["value"], checks["queued_oldest"]["level"]) == (1, "warn")
    polled = next(i for i in report["inboxes"] if i["id"] == inbox.id)
    assert (polled["mode"], polled["poller_running"], polled["level"]) == ("polling", False, "bad")
    page = await client.get("/settings/health")
    assert page.status_code == 200 and 'id="check-outbox_oldest"' in page.text and "Проблема" in page.text
    await client.http.aclose()


async def test_health_shows_parked_rows_paused_endpoints_and_failing_webhooks_and_retries_a_parked_row(
    live_api, admin, clean_db
):
    now = datetime.now(UTC)
    await health.beat(clean_db, worker="host:1", task_queue="switchboard", started_at=now)
    parked_id, conversation_id = await add_parked_row(clean_db, error="Workflow type not registered")
    async with clean_db() as db, db.begin():
        # refused three times and retried still; tried while Temporal was away (not refused)
        db.add(OutboxEvent(conversation_id=conversation_id, kind="notice", attempts=5, refusals=3, last_error="x"))
        db.add(OutboxEvent(conversation_id=conversation_id, kind="notice", attempts=4))
        failing = Inbox(
            name="Бот с вебхуком",
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=b"",
            webhook_url="https://switchboard.test/webhooks/telegram/1",
            webhook_checked_at=now,
            webhook_error="Wrong response from the webhook: 502 Bad Gateway",
        )
        paused = WebhookEndpoint(
            name="Zapier",
            url="https://hooks.zapier.com/hooks/catch/123/s3cr3t-path/",
            events=["message.created"],
            secrets_encrypted=b"",
            paused_at=now,
            pause_reason="failing since yesterday: HTTP 500",
            failing_since=now - timedelta(days=1),
            last_error="HTTP 500",
        )
        fine = WebhookEndpoint(name="CRM", url="https://crm.example.com/hook", events=[], secrets_encrypted=b"")
        db.add_all([failing, paused, fine])
        await db.flush()
        event = {"event_type": "message.created", "order_key": conversation_id, "payload": {}}
        db.add(WebhookDelivery(endpoint_id=paused.id, event_id=1, status=DeliveryState.DEAD, **event))
        db.add(WebhookDelivery(endpoint_id=fine.id, event_id=1, status=DeliveryState.PENDING, **event))
    supervisor_id = await add_staff(clean_db, OperatorRole.SUPERVISOR, "boris@example.com", "Борис")
    client = await sign_in(live_api.url, "boris@example.com")

    answer = await client.get("/settings/health.json")
    report = answer.json()
    assert answer.status_code == 503 and report["status"] == "bad"
    checks = report["checks"]
    assert (checks["outbox_parked"]["value"], checks["outbox_parked"]["level"]) == (1, "warn")
    assert (checks["outbox_refused"]["value"], checks["outbox_refused"]["level"]) == (1, "warn")
    assert [(p["id"], p["conversation_id"], p["refusals"], p["error"]) for p in report["parked_outbox"]] == [
        (parked_id, conversation_id, 10, "Workflow type not registered")
    ]
    endpoints = {e["name"]: e for e in report["webhook_endpoints"]}
    assert endpoints["Zapier"]["level"] == "bad" and endpoints["Zapier"]["paused"] is True
    assert (endpoints["Zapier"]["host"], endpoints["Zapier"]["dead"]) == ("hooks.zapier.com", 1)
    assert (endpoints["CRM"]["level"], endpoints["CRM"]["queued"]) == ("ok", 1)
    assert "s3cr3t" not in answer.text  # a hook's path is often its secret
    webhook = next(i for i in report["inboxes"] if i["id"] == failing.id)
    assert (webhook["mode"], webhook["level"]) == ("webhook", "bad")
    assert webhook["error"] == "Wrong response from the webhook: 502 Bad Gateway"

    page = await client.get("/settings/health")
    assert page.status_code == 200 and "s3cr3t" not in page.text
    assert f'id="parked-{parked_id}"' in page.text and "Workflow type not registered" in page.text
    assert f'action="/settings/health/outbox/{parked_id}/retry"' in page.text
    assert f'id="endpoint-{paused.id}"' in page.text and "hooks.zapier.com" in page.text
    assert "502 Bad Gateway" in page.text

    answer = await client.post(f"/settings/health/outbox/{parked_id}/retry")
    assert (answer.status_code, answer.headers["location"]) == (303, "/settings/health")
    page = await client.get("/settings/health")
    assert "Изменение снова передано диалогу." in page.text and f'id="parked-{parked_id}"' not in page.text
    async with clean_db() as db:
        rows = (await db.scalars(select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id))).all()
        retried = await db.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retried"))
    assert parked_id not in {r.id for r in rows} and all(r.parked_at is None for r in rows)
    assert max(r.id for r in rows) > parked_id  # at the back of its conversation's queue
    assert retried.actor_operator_id == supervisor_id and retried.details["outbox_id"] == parked_id
    assert (await client.get("/settings/health.json")).json()["checks"]["outbox_parked"]["value"] == 0

    answer = await client.post(f"/settings/health/outbox/{parked_id}/retry")  # twice: nothing left to retry
    assert answer.status_code == 303
    assert "Это изменение не отложено (уже): повторять нечего." in (await client.get("/settings/health")).text
    await client.http.aclose()


async def test_health_lists_the_oldest_parked_rows_and_says_how_many_more_wait(live_api, admin, clean_db, monkeypatch):
    monkeypatch.setattr(health, "PARKED_SHOWN", 2)
    oldest = [(await add_parked_row(clean_db))[0] for _ in range(3)]
    client = await sign_in(live_api.url, admin["email"], admin["password"])
    report = (await client.get("/settings/health.json")).json()
    assert report["checks"]["outbox_parked"]["value"] == 3
    assert [p["id"] for p in report["parked_outbox"]] == oldest[:2]
    page = (await client.get("/settings/health")).text
    assert "Показаны старейшие 2 из 3; повторите их, и появятся следующие." in page
    assert f'id="parked-{oldest[2]}"' not in page

    await client.post(f"/settings/health/outbox/{oldest[0]}/retry")
    page = (await client.get("/settings/health")).text
    assert 'id="parked-shown"' not in page and f'id="parked-{oldest[2]}"' in page
    await client.http.aclose()
