"""Labels through the REST API (the set a conversation carries, read and replaced, within the
token's branches, audited under the token) and `contact.updated` as a webhook event: a contact
changed through the API is queued for an endpoint subscribed to it, in the change's transaction."""

from __future__ import annotations

from sqlalchemy import select

from domain.enums import ActorKind
from infra.models import AuditEvent, Label, WebhookDelivery
from infra.security import CredentialBox
from services import webhooks
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.api_support import assert_problem, client, make_scene


async def test_a_token_reads_and_sets_a_conversations_labels_within_its_branches(clean_db, live_api):
    scene = await make_scene(clean_db)
    async with clean_db() as db, db.begin():
        vip, late = Label(name="VIP", colour="#d6453a"), Label(name="Late", colour="#1d5cbf")
        db.add_all([vip, late])
        await db.flush()
    path = f"/api/v1/conversations/{scene.my_pool}/labels"
    async with client(live_api.url, scene.writer) as api:
        assert {label["name"] for label in (await api.get("/api/v1/labels")).json()} == {"VIP", "Late"}
        assert (await api.get(path)).json() == []
        set_ = await api.put(path, json={"label_ids": [vip.id, late.id]})
        assert set_.status_code == 200 and [label["name"] for label in set_.json()] == ["Late", "VIP"]
        again = await api.put(path, json={"label_ids": [vip.id]})
        assert [label["id"] for label in again.json()] == [vip.id]
        assert [label["name"] for label in (await api.get(path)).json()] == ["VIP"]
        refused = assert_problem(await api.put(path, json={"label_ids": [vip.id, 987654]}), 422)
        assert refused["detail"]
        assert [label["name"] for label in (await api.get(path)).json()] == ["VIP"]  # nothing half-done
        other = f"/api/v1/conversations/{scene.other_pool}/labels"
        assert_problem(await api.put(other, json={"label_ids": [vip.id]}), 404)
        assert_problem(await api.get(other), 404)
    async with client(live_api.url, scene.reader) as read_only:
        assert_problem(await read_only.put(path, json={"label_ids": []}), 403)
    async with clean_db() as db:
        entries = (
            await db.execute(
                select(AuditEvent.actor_kind, AuditEvent.details).where(AuditEvent.action == "conversation.labels")
            )
        ).all()
    assert [(kind, details["added"], details["removed"]) for kind, details in entries] == [
        (ActorKind.INTEGRATION, sorted([vip.id, late.id]), []),
        (ActorKind.INTEGRATION, [], [late.id]),
    ]


async def test_a_contact_changed_through_the_api_is_queued_as_contact_updated(clean_db, live_api):
    scene = await make_scene(clean_db)
    async with clean_db() as db, db.begin():
        endpoint, _ = await webhooks.create_endpoint(
            db,
            CredentialBox(TEST_CREDENTIALS_KEY),
            webhooks.EndpointInput(name="CRM", url="https://crm.example/hooks", events=["contact.updated"]),
            operator_id=None,
        )
    contact_id = scene.contacts[scene.my_pool]
    async with client(live_api.url, scene.writer) as api:
        changed = await api.patch(f"/api/v1/contacts/{contact_id}", json={"email": "ann@example.org"})
        assert changed.status_code == 200, changed.text
    async with clean_db() as db:
        queued = (await db.execute(select(WebhookDelivery.event_type, WebhookDelivery.payload))).all()
    assert [(kind, payload["contact_id"], payload["fields"]) for kind, payload in queued] == [
        ("contact.updated", contact_id, ["email"])
    ]
    assert queued[0].payload["conversation_id"] == scene.my_pool
    assert endpoint.events == ["contact.updated"]
