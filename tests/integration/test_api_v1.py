"""The REST API v1 over real HTTP against PostgreSQL: every route needs a token, keeps to the
token's branches (ids outside them are 404, like ids that do not exist), refuses read-only
tokens on writes, and does what it says (rows, outbox notices, audit, events)."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from domain.conversation import NoticeKind
from domain.enums import ActorKind, ConversationStatus, DeliveryStatus, SenderKind
from infra.models import ApiToken, AuditEvent, Conversation, Message, OutboxEvent, RealtimeEvent
from services.outbox import DELIVER, NOTICE
from tests.integration.api_support import assert_problem, client, make_scene


@pytest.fixture
async def scene(clean_db):
    return await make_scene(clean_db)


def _routes(s) -> list[tuple[str, str, dict | None]]:
    """Every route, with a conversation or contact of my branch and a body that would do."""
    c, contact = s.my_pool, s.contacts[s.my_pool]
    return [
        ("GET", "/api/v1/conversations", None),
        ("GET", f"/api/v1/conversations/{c}", None),
        ("PATCH", f"/api/v1/conversations/{c}", {"priority": "high"}),
        ("POST", f"/api/v1/conversations/{c}/transfer", {"branch_id": s.mine}),
        ("POST", f"/api/v1/conversations/{c}/resolve", None),
        ("GET", f"/api/v1/conversations/{c}/messages", None),
        ("POST", f"/api/v1/conversations/{c}/messages", {"text": "hi"}),
        ("POST", f"/api/v1/conversations/{c}/notes", {"text": "note"}),
        ("GET", "/api/v1/contacts?phone=79000000000", None),
        ("GET", f"/api/v1/contacts/{contact}", None),
        ("PATCH", f"/api/v1/contacts/{contact}", {"region": "Moscow"}),
        ("GET", "/api/v1/contacts/export", None),
        ("GET", "/api/v1/inboxes", None),
        ("GET", "/api/v1/operators", None),
        ("GET", "/api/v1/token", None),
    ]


async def _effects(factory) -> tuple[int, int, int]:
    async with factory() as db:
        return (
            await db.scalar(select(func.count()).select_from(Message)),
            await db.scalar(select(func.count()).select_from(OutboxEvent)),
            await db.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.actor_token_id.isnot(None))),
        )


async def test_every_route_needs_a_token_and_every_write_a_read_write_one(live_api, scene):
    routes = _routes(scene)
    before = await _effects(scene.factory)
    async with client(live_api.url) as anonymous, client(live_api.url, scene.reader) as reader:
        for method, path, body in routes:
            assert_problem(await anonymous.request(method, path, json=body), 401)
            answer = await reader.request(method, path, json=body)
            if method == "GET":
                assert answer.status_code == 200, (path, answer.text)
            else:
                assert assert_problem(answer, 403)["type"] == "urn:switchboard:problem:read-only-token", path
    assert await _effects(scene.factory) == before  # nothing happened


async def test_ids_outside_the_tokens_branches_are_404_like_ids_that_do_not_exist(live_api, scene):
    others = [scene.other_pool, scene.other_assigned, scene.unrouted]
    missing = 10**15
    async with client(live_api.url, scene.writer) as http:
        for conversation in [*others, missing]:
            contact = scene.contacts.get(conversation, missing)
            for method, path, body in [
                ("GET", f"/api/v1/conversations/{conversation}", None),
                ("PATCH", f"/api/v1/conversations/{conversation}", {"priority": "high"}),
                ("POST", f"/api/v1/conversations/{conversation}/transfer", {"branch_id": scene.mine}),
                ("POST", f"/api/v1/conversations/{conversation}/resolve", None),
                ("GET", f"/api/v1/conversations/{conversation}/messages", None),
                ("POST", f"/api/v1/conversations/{conversation}/messages", {"text": "hi"}),
                ("POST", f"/api/v1/conversations/{conversation}/notes", {"text": "note"}),
                ("GET", f"/api/v1/contacts/{contact}", None),
                ("PATCH", f"/api/v1/contacts/{contact}", {"region": "Moscow"}),
            ]:
                answer = await http.request(method, path, json=body)
                assert assert_problem(answer, 404) == {
                    "type": "about:blank",
                    "title": "Not Found",
                    "status": 404,
                    "detail": "No such object, or not yours.",
                }, (method, path)
        # out of what the database can hold: a validation error, never a 500
        assert_problem(await http.get(f"/api/v1/conversations/{2**63}"), 422)
    async with client(live_api.url, scene.everything) as http:
        for conversation in others:
            assert (await http.get(f"/api/v1/conversations/{conversation}")).status_code == 200


async def test_list_keeps_to_the_branches_filters_and_pages_by_cursor(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        page = (await http.get("/api/v1/conversations")).json()
        assert [c["id"] for c in page["items"]] == [scene.my_assigned, scene.my_pool]  # newest activity first
        assert page["next_cursor"] is None
        mine = page["items"][0]
        assert mine["assignee"] == {"id": scene.my_operator, "name": "Op 0"} and mine["unanswered"] is True
        assert mine["contact"]["id"] == scene.contacts[scene.my_assigned] and mine["priority"] == "none"
        unassigned = (await http.get("/api/v1/conversations", params={"unassigned": "true"})).json()
        assert [c["id"] for c in unassigned["items"]] == [scene.my_pool]
        assert (await http.get("/api/v1/conversations", params={"status": "resolved"})).json()["items"] == []
        assert_problem(await http.get("/api/v1/conversations", params={"cursor": "not-a-cursor"}), 422)
    async with client(live_api.url, scene.everything) as http:
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/v1/conversations", params=params)).json()
            seen += [c["id"] for c in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
            # a row that moves to the top meanwhile is not seen twice, nor does it push others out
            async with scene.factory() as db, db.begin():
                row = await db.get(Conversation, seen[0])
                row.last_activity_at = func.now()
        everything = [scene.unrouted, scene.other_assigned, scene.other_pool, scene.my_assigned, scene.my_pool]
        assert seen == everything
        by_branch = (await http.get("/api/v1/conversations", params={"branch_id": scene.other})).json()
        assert {c["id"] for c in by_branch["items"]} == {scene.other_pool, scene.other_assigned}


async def test_priority_is_set_audited_and_announced(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        answer = await http.patch(f"/api/v1/conversations/{scene.my_pool}", json={"priority": "urgent"})
        assert answer.status_code == 200 and answer.json()["priority"] == "urgent"
        assert_problem(await http.patch(f"/api/v1/conversations/{scene.my_pool}", json={}), 422)
        invalid = await http.patch(f"/api/v1/conversations/{scene.my_pool}", json={"priority": "sky-high"})
        assert assert_problem(invalid, 422)["errors"][0]["pointer"] == "#/priority"
        unknown = await http.patch(f"/api/v1/conversations/{scene.my_pool}", json={"colour": "red"})
        assert assert_problem(unknown, 422)["errors"][0]["pointer"] == "#/colour"
    async with scene.factory() as db:
        assert (await db.get(Conversation, scene.my_pool)).priority == 4
        audit = await db.scalar(select(AuditEvent).where(AuditEvent.action == "conversation.priority"))
        token_id = await db.scalar(select(ApiToken.id).where(ApiToken.name == "writer"))
        event = await db.scalar(select(RealtimeEvent).where(RealtimeEvent.type == "conversation.updated"))
    assert audit.actor_kind == ActorKind.INTEGRATION and audit.actor_token_id == token_id
    assert audit.actor_operator_id is None and audit.details == {"from": 0, "to": 4}
    assert event.payload["conversation_id"] == scene.my_pool and event.payload["change"] == "priority"


async def _notices(factory, conversation_id: int) -> list[dict]:
    async with factory() as db:
        rows = await db.scalars(
            select(OutboxEvent).where(OutboxEvent.conversation_id == conversation_id).order_by(OutboxEvent.id)
        )
        return [{"row": r.kind, **r.payload} for r in rows]


async def test_transfer_assign_and_resolve_go_to_the_workflow_within_the_tokens_branches(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        moved = await http.post(
            f"/api/v1/conversations/{scene.my_pool}/transfer", json={"operator_id": scene.my_operator}
        )
        assert moved.status_code == 202 and moved.json()["id"] == scene.my_pool
        assigned = await http.patch(
            f"/api/v1/conversations/{scene.my_assigned}", json={"assignee_id": scene.my_operator}
        )
        assert assigned.status_code == 200
        resolved = await http.post(f"/api/v1/conversations/{scene.my_assigned}/resolve")
        assert resolved.status_code == 202
        # an operator or a branch outside the token's branches is as unknown as a missing one
        for target in ({"operator_id": scene.other_operator}, {"branch_id": scene.other}, {"branch_id": 10**15}):
            refused = await http.post(f"/api/v1/conversations/{scene.my_pool}/transfer", json=target)
            assert assert_problem(refused, 422)["detail"] in (
                "That operator does not exist or is deactivated.",
                "That branch does not exist.",
            )
        assert_problem(await http.post(f"/api/v1/conversations/{scene.my_pool}/transfer", json={}), 422)
    pool, assigned_notices = (
        await _notices(scene.factory, scene.my_pool),
        await _notices(scene.factory, scene.my_assigned),
    )
    assert [(n["row"], n["kind"], n["target_operator_id"], n["operator_id"]) for n in pool] == [
        (NOTICE, NoticeKind.TRANSFER, scene.my_operator, None)
    ]
    assert [(n["kind"], n["target_operator_id"]) for n in assigned_notices] == [
        (NoticeKind.TRANSFER, scene.my_operator),
        (NoticeKind.RESOLVE, None),
    ]
    async with scene.factory() as db:
        actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.actor_token_id.isnot(None)))).all()
    assert sorted(actions) == [
        "conversation.resolve_requested",
        "conversation.transfer_requested",
        "conversation.transfer_requested",
    ]


async def test_a_reply_is_queued_for_the_conversations_channel_and_a_note_for_no_one(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        reply = await http.post(f"/api/v1/conversations/{scene.my_pool}/messages", json={"text": "  Hello **Ann**  "})
        note = await http.post(f"/api/v1/conversations/{scene.my_pool}/notes", json={"text": "VIP"})
        empty = await http.post(f"/api/v1/conversations/{scene.my_pool}/messages", json={"text": "   "})
        missing = await http.post(f"/api/v1/conversations/{scene.my_pool}/messages", json={})
    assert reply.status_code == 201 and note.status_code == 201, (reply.text, note.text)
    assert_problem(empty, 422)
    assert assert_problem(missing, 422)["errors"] == [{"detail": "Field required", "pointer": "#/text"}]
    sent, noted = reply.json(), note.json()
    assert (
        sent["text"] == "Hello **Ann**" and sent["sender_kind"] == "integration" and sent["delivery_status"] == "queued"
    )
    assert noted["note"] is True and noted["delivery_status"] == "received"
    async with scene.factory() as db:
        message = await db.get(Message, sent["id"])
        token_id = await db.scalar(select(ApiToken.id).where(ApiToken.name == "writer"))
    assert message.sender_kind == SenderKind.INTEGRATION and message.sender_token_id == token_id
    assert message.delivery_status == DeliveryStatus.QUEUED and message.inbox_id == scene.inbox_id
    notices = await _notices(scene.factory, scene.my_pool)
    assert [(n["row"], n["message_id"]) for n in notices] == [(DELIVER, sent["id"])]  # the note is not queued


async def test_messages_page_by_cursor_in_both_orders(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        for n in range(4):
            await http.post(f"/api/v1/conversations/{scene.my_pool}/notes", json={"text": f"note {n}"})
        for order in ("asc", "desc"):
            seen, cursor = [], None
            while True:
                params = {"limit": 2, "order": order, **({"cursor": cursor} if cursor else {})}
                page = (await http.get(f"/api/v1/conversations/{scene.my_pool}/messages", params=params)).json()
                seen += [m["text"] for m in page["items"]]
                if (cursor := page["next_cursor"]) is None:
                    break
            expected = ["hello from 0", "note 0", "note 1", "note 2", "note 3"]
            assert seen == (expected if order == "asc" else expected[::-1])


async def test_contacts_search_get_update_and_export_within_the_tokens_branches(live_api, scene):
    mine, theirs = scene.contacts[scene.my_pool], scene.contacts[scene.other_pool]
    async with client(live_api.url, scene.writer) as http:
        by_phone = (await http.get("/api/v1/contacts", params={"phone": "7900000000 0"})).json()["items"]
        assert [c["id"] for c in by_phone] == [mine]
        assert by_phone[0]["identities"] == [
            {
                "channel": "telegram",
                "user_id": "90000",
                "username": None,
                "reachable": True,
                "chats": [{"inbox_id": scene.inbox_id, "reachable": True}],
            }
        ]
        by_email = (await http.get("/api/v1/contacts", params={"email": "CUSTOMER0@example.com"})).json()["items"]
        by_channel = (
            await http.get("/api/v1/contacts", params={"channel": "telegram", "channel_user_id": "90000"})
        ).json()["items"]
        assert [c["id"] for c in by_email] == [c["id"] for c in by_channel] == [mine]
        hidden = (await http.get("/api/v1/contacts", params={"email": "customer2@example.com"})).json()["items"]
        assert hidden == []  # the other branch's contact is not found
        assert_problem(await http.get("/api/v1/contacts"), 422)

        changed = await http.patch(f"/api/v1/contacts/{mine}", json={"display_name": "Ann", "phone": None})
        assert (
            changed.status_code == 200 and changed.json()["display_name"] == "Ann" and changed.json()["phone"] is None
        )
        assert_problem(await http.patch(f"/api/v1/contacts/{mine}", json={"email": "not-an-address"}), 422)
        assert_problem(await http.patch(f"/api/v1/contacts/{mine}", json={"display_name": " "}), 422)

        export = await http.get("/api/v1/contacts/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted(int(r["id"]) for r in rows) == sorted([mine, scene.contacts[scene.my_assigned]])
    assert theirs not in {int(r["id"]) for r in rows}
    async with scene.factory() as db:
        event = await db.scalar(select(RealtimeEvent).where(RealtimeEvent.type == "contact.updated"))
    assert event.payload["contact_id"] == mine and event.payload["fields"] == ["display_name", "phone"]


async def test_export_cells_never_start_a_formula(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        await http.patch(f"/api/v1/contacts/{scene.contacts[scene.my_pool]}", json={"display_name": "=HYPERLINK(1)"})
        export = await http.get("/api/v1/contacts/export")
    names = [r["display_name"] for r in csv.DictReader(io.StringIO(export.text))]
    assert "'=HYPERLINK(1)" in names


async def test_inboxes_and_operators(live_api, scene):
    async with client(live_api.url, scene.writer) as http:
        inboxes = (await http.get("/api/v1/inboxes")).json()
        operators = (await http.get("/api/v1/operators")).json()
    async with client(live_api.url, scene.everything) as http:
        everyone = (await http.get("/api/v1/operators")).json()
    assert [(i["id"], i["channel"], i["webhook"]) for i in inboxes] == [(scene.inbox_id, "telegram", False)]
    assert [(o["id"], o["status"]) for o in operators] == [(scene.my_operator, "online")]
    assert {o["id"] for o in everyone} == {scene.my_operator, scene.other_operator}
    assert "password_hash" not in operators[0]


async def test_status_of_a_closed_conversation_cannot_be_resolved(live_api, scene):
    async with scene.factory() as db, db.begin():
        (await db.get(Conversation, scene.my_pool)).status = ConversationStatus.CLOSED
    async with client(live_api.url, scene.writer) as http:
        assert_problem(await http.post(f"/api/v1/conversations/{scene.my_pool}/resolve"), 422)
        assert_problem(await http.post(f"/api/v1/conversations/{scene.my_pool}/messages", json={"text": "hi"}), 422)


async def test_a_contact_update_with_edge_values_never_fails_the_server(live_api, scene):
    """Cases schemathesis found: attributes null (cleared, the column is not nullable), a name at
    its longest, empty strings."""
    contact = scene.contacts[scene.my_pool]
    body = {"attributes": None, "display_name": "0" * 300, "email": "0@0", "phone": "", "region": ""}
    async with client(live_api.url, scene.writer) as http:
        changed = await http.patch(f"/api/v1/contacts/{contact}", json=body)
        assert changed.status_code == 200, changed.text
        got = await http.get(f"/api/v1/contacts/{contact}")
        assert got.status_code == 200, got.text
        assert got.json()["attributes"] == {} and got.json()["display_name"] == "0" * 300
        assert_problem(await http.patch(f"/api/v1/contacts/{contact}", json={"display_name": None}), 422)
        too_long = await http.patch(f"/api/v1/contacts/{contact}", json={"display_name": "0" * 301})
        assert assert_problem(too_long, 422)["errors"][0]["pointer"] == "#/display_name"
