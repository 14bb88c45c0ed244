"""The API channel end to end over real HTTP: an admin adds an API inbox (Settings or the command
line); an integrator posts its customers' messages with a token (stored once per its message id,
also when posted twice at once), gets the operators' replies as `message.created` webhook events
(a real worker, a receiver on loopback) and reports them delivered and read."""

from __future__ import annotations

import argparse
import asyncio
from contextlib import suppress

import httpx
from sqlalchemy import func, select, update
from temporalio.service import RPCError

from domain.enums import ChannelKind, DeliveryStatus, OperatorRole
from domain.ids import webhook_endpoint_workflow_id
from infra.models import Branch, Conversation, Inbox, Message, Operator, RealtimeEvent
from infra.security import CredentialBox
from infra.temporal import WorkflowStarter
from services import webhooks
from setup import admin
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.integration.api_support import assert_problem, client, issue_token
from tests.integration.conftest import wait_until
from tests.integration.realtime_support import staff

CSRF = "c"  # realtime_support.staff's sessions


def posted(message_id: str, text: str = "Where is my order?", contact: str = "crm-42") -> dict:
    return {
        "contact": {"id": contact, "name": "Ann", "phone": "+7 999 123-45-67"},
        "message": {"id": message_id, "text": text},
    }


async def _branches(factory) -> tuple[int, int]:
    async with factory() as db, db.begin():
        north, south = Branch(name="North", is_default=True), Branch(name="South")
        db.add_all([north, south])
        await db.flush()
        return north.id, south.id


async def test_an_admin_adds_an_api_inbox_in_settings_and_it_opens_like_any_inbox(clean_db, live_api):
    north, _ = await _branches(clean_db)
    operator_id, cookie = await staff(clean_db, OperatorRole.ADMIN)
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == operator_id).values(locale="en"))
    headers = {"accept": "text/html"}
    async with httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}, headers=headers) as http:
        assert "/settings/api-inbox" in (await http.get("/settings/inboxes")).text
        refused = await http.post("/settings/api-inbox", data={"csrf_token": CSRF, "name": "  "})
        assert refused.status_code == 422 and "Give the inbox a name of 1 to 200 characters." in refused.text
        added = await http.post(
            "/settings/api-inbox", data={"csrf_token": CSRF, "name": "Shop app", "default_branch_id": str(north)}
        )
        assert added.status_code == 303
        async with clean_db() as db:
            inbox = await db.scalar(select(Inbox))
        assert (inbox.name, inbox.channel, inbox.default_branch_id) == ("Shop app", ChannelKind.API, north)
        assert added.headers["location"] == f"/settings/inboxes/{inbox.id}"
        assert (await http.get(f"/settings/inboxes/{inbox.id}")).status_code == 200


async def test_the_command_line_adds_an_api_inbox(clean_db, app_settings):
    north, _ = await _branches(clean_db)
    await admin.add_inbox(app_settings, argparse.Namespace(channel="api", name="Shop app", token=None, branch=north))
    async with clean_db() as db:
        inbox = await db.scalar(select(Inbox))
    assert (inbox.channel, inbox.default_branch_id, inbox.credentials_encrypted) == (ChannelKind.API, north, None)


async def test_an_integrator_posts_messages_gets_the_replies_and_reports_them_read(
    clean_db, live_api, temporal_client, engine_stack
):
    north, south = await _branches(clean_db)
    async with clean_db() as db, db.begin():
        shop = Inbox(name="Shop app", channel=ChannelKind.API, default_branch_id=north)
        bot = Inbox(name="Bot", channel=ChannelKind.TELEGRAM)
        db.add_all([shop, bot])
        await db.flush()
    writer = await issue_token(clean_db, branch_ids=[north])
    strangers = await issue_token(clean_db, branch_ids=[south], name="south")
    reader = await issue_token(clean_db, branch_ids=[north], can_write=False, name="reader")
    inbound = f"/api/v1/inboxes/{shop.id}/messages"
    async with WebhookReceiver() as receiver, client(live_api.url, writer) as api:
        async with client(live_api.url, strangers) as other, client(live_api.url, reader) as read_only:
            assert_problem(await other.post(inbound, json=posted("m-1")), 404)
            assert_problem(await read_only.post(inbound, json=posted("m-1")), 403)
        assert_problem(await api.post(f"/api/v1/inboxes/{bot.id}/messages", json=posted("m-1")), 404)
        assert_problem(await api.post(inbound, json={"message": {"id": "m-1", "text": "hi"}}), 422)
        assert_problem(await api.post(inbound, json=posted("m-1", text="")), 422)

        async with clean_db() as db, db.begin():
            endpoint, _ = await webhooks.create_endpoint(
                db,
                CredentialBox(TEST_CREDENTIALS_KEY),
                webhooks.EndpointInput(name="Shop", url=receiver.url, events=["message.created"], inbox_id=shop.id),
                operator_id=None,
            )
        await WorkflowStarter(temporal_client, engine_stack.task_queue).wake_webhook_endpoint(endpoint.id)
        try:
            first, again = await asyncio.gather(
                api.post(inbound, json=posted("m-1")), api.post(inbound, json=posted("m-1"))
            )
            assert first.status_code == again.status_code == 201, (first.text, again.text)
            assert first.json()["message_id"] == again.json()["message_id"]
            assert sorted([first.json()["duplicate"], again.json()["duplicate"]]) == [False, True]
            conversation_id = first.json()["conversation_id"]
            async with clean_db() as db:
                assert await db.scalar(select(func.count()).select_from(Message)) == 1

            await wait_until(lambda: _routed(clean_db, conversation_id, north))  # by the inbox's branch
            reply = await api.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": "It ships today"})
            assert reply.status_code == 201, reply.text
            reply_id = reply.json()["id"]
            await wait_until(lambda: _status(clean_db, reply_id, DeliveryStatus.SENT), timeout=30)
            await wait_until(lambda: any(r.json["data"].get("text") == "It ships today" for r in receiver.accepted()))
            event = next(r.json for r in receiver.accepted() if r.json["data"].get("text") == "It ships today")
            assert event["data"]["message_id"] == reply_id

            receipts = f"/api/v1/inboxes/{shop.id}/receipts"
            delivered = await api.post(receipts, json={"message_id": reply_id, "status": "delivered"})
            assert delivered.json() == {"message_id": reply_id, "delivery_status": "delivered"}
            read = await api.post(receipts, json={"message_id": reply_id, "status": "read"})
            assert read.json()["delivery_status"] == "read"
            late = await api.post(receipts, json={"message_id": reply_id, "status": "delivered"})
            assert late.json()["delivery_status"] == "read"  # never moved back
            inbound_id = first.json()["message_id"]
            assert_problem(await api.post(receipts, json={"message_id": inbound_id, "status": "read"}), 422)
            async with clean_db() as db:
                announced = (
                    await db.scalars(
                        select(RealtimeEvent.payload).where(RealtimeEvent.type == "message.status_changed")
                    )
                ).all()
            statuses = [p["status"] for p in announced if p["message_id"] == reply_id]
            assert statuses[-2:] == ["delivered", "read"]

            # the integrator's ids and ours for the replies never meet: its message "<our id>" is new
            same_digits = await api.post(inbound, json=posted(str(reply_id), text="Thanks!"))
            assert same_digits.status_code == 201, same_digits.text
            assert same_digits.json()["duplicate"] is False and same_digits.json()["message_id"] != reply_id
        finally:
            with suppress(RPCError):
                await temporal_client.get_workflow_handle(webhook_endpoint_workflow_id(endpoint.id)).terminate()


async def _routed(factory, conversation_id: int, branch_id: int) -> bool:
    async with factory() as db:
        return (await db.get(Conversation, conversation_id)).branch_id == branch_id


async def _status(factory, message_id: int, wanted: DeliveryStatus) -> bool:
    async with factory() as db:
        return (await db.get(Message, message_id)).delivery_status == wanted
