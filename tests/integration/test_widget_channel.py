"""The website widget as a channel, through the live api and the engine as it runs: a visitor's
message takes the one ingest path once per client id, an operator's reply reaches the visitor's
stream (or poll) exactly once, the visitor's browser moves its ticks to read."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from activities.delivery import DeliveryActivities
from domain.enums import ChannelKind, ConversationStatus, DeliveryStatus, Interface, MessageDirection, OperatorRole
from infra.models import ContactIdentity, Conversation, Message
from tests.integration.api_support import client, issue_token
from tests.integration.conftest import wait_until
from tests.integration.realtime_support import open_stream, staff
from tests.integration.widget_support import Visitor, new_client_id, widget_inbox


async def _reply(base_url: str, secret: str, conversation_id: int, text: str, key: str) -> int:
    async with client(base_url, secret) as api:
        answer = await api.post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text}, headers={"Idempotency-Key": key}
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]


async def _status(factory, message_id: int) -> Message:
    async with factory() as db:
        return await db.get(Message, message_id)


async def test_a_visitor_chats_with_an_operator_live(clean_db, engine_stack, live_api):
    inbox_id = await widget_inbox(clean_db, rating_mode="stars")
    secret = await issue_token(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    assert (await visitor.start()).status_code == 201

    # a resend after a timeout (same client id) stores the message once
    client_id = new_client_id()
    first, again = await visitor.say("Hello, is the **shop** open?", client_id), await visitor.say("x", client_id)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json()["message_id"] == again.json()["message_id"] and again.json()["duplicate"]
    async with clean_db() as db:
        stored = (await db.scalars(select(Message))).all()
        identity = await db.scalar(select(ContactIdentity))
        conversation = await db.scalar(select(Conversation))
    assert [(m.direction, m.text) for m in stored] == [(MessageDirection.IN, "Hello, is the **shop** open?")]
    assert identity.channel == ChannelKind.WIDGET and conversation.interface == Interface.WIDGET
    chat = await visitor.chat()
    assert chat["conversation"]["id"] == conversation.id
    assert chat["messages"][0]["mine"] and chat["messages"][0]["client_id"] == client_id
    assert chat["messages"][0]["html"] == "Hello, is the **shop** open?"  # the visitor's text is not markup

    async with visitor.stream() as stream:
        reply_id = await _reply(live_api.url, secret, conversation.id, "Yes, until **8 pm**", "r1")
        frames = await stream.until(lambda f: f.event == "message.created" and f.data["message_id"] == reply_id)
        assert all(f.data.get("note") is not True for f in frames)
        news = await visitor.chat(after=stored[0].id)
        assert [(m["id"], m["html"], m["mine"]) for m in news["messages"]] == [
            (reply_id, "Yes, until <b>8 pm</b>", False)
        ]
    # the widget's channel hands it over without a provider: sent, then the browser's ticks,
    # which the cabinet's thread shows live (the workspace re-fetches a message on its event)
    await wait_until(lambda: _sent(clean_db, reply_id))
    _, cookie = await staff(clean_db, OperatorRole.SUPERVISOR)
    shown = f"/conversations/{conversation.id}/messages/{reply_id}"
    async with (
        open_stream(live_api.url, cookie) as cabinet,
        httpx.AsyncClient(base_url=live_api.url, cookies={"sb_session": cookie}) as http,
    ):
        assert 'data-seen="' not in (await http.get(shown)).text
        ticked = await visitor.call("POST", "/ticks", json={"delivered_up_to": reply_id})
        assert ticked.status_code == 204
        await cabinet.until(lambda f: f.event == "message.status_changed" and f.data["status"] == "delivered")
        delivered = await _status(clean_db, reply_id)
        assert delivered.delivery_status == DeliveryStatus.DELIVERED
        thread = (await http.get(shown)).text
        assert 'data-status="delivered"' in thread and 'data-seen="delivered"' in thread
        assert f'datetime="{delivered.delivered_at.isoformat()}"' in thread
        await visitor.call("POST", "/ticks", json={"read_up_to": reply_id})
        await cabinet.until(lambda f: f.event == "message.status_changed" and f.data["status"] == "read")
        read = await _status(clean_db, reply_id)
        assert read.delivery_status == DeliveryStatus.READ and read.delivered_at <= read.read_at
        thread = (await http.get(shown)).text
        assert 'data-status="read"' in thread and 'data-seen="read"' in thread
        assert f'datetime="{read.read_at.isoformat()}"' in thread
    # never back: a late "delivered" leaves it read
    await visitor.call("POST", "/ticks", json={"delivered_up_to": reply_id})
    assert (await _status(clean_db, reply_id)).delivery_status == DeliveryStatus.READ


async def _sent(factory, message_id: int) -> bool:
    return (await _status(factory, message_id)).sent_at is not None


async def test_a_tick_that_comes_before_the_send_is_kept(clean_db, live_api):
    """The visitor gets a reply from the hub when it is written; their browser's tick can reach
    us before the delivery marks it sent, and the send must not take it back."""
    inbox_id = await widget_inbox(clean_db)
    secret = await issue_token(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("hi")
    chat = await visitor.chat()
    reply_id = await _reply(live_api.url, secret, chat["conversation"]["id"], "hello", "early")
    assert (await visitor.call("POST", "/ticks", json={"read_up_to": reply_id})).status_code == 204
    queued = await _status(clean_db, reply_id)
    assert queued.delivery_status == DeliveryStatus.QUEUED and queued.read_at is not None
    activities = DeliveryActivities(clean_db, {}, None, live_api._server.config.app.state.settings)
    await activities._mark_sent(queued, [str(reply_id)], 1, 1, "test")
    assert (await _status(clean_db, reply_id)).delivery_status == DeliveryStatus.READ


async def test_polling_gives_what_the_stream_gives(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db, features={"sse": False})
    secret = await issue_token(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("anyone there?")
    conversation_id = (await visitor.chat())["conversation"]["id"]
    # the inbox's sse flag is off: the stream is refused, the widget polls
    refused = await visitor.call("GET", "/events", params={"token": visitor.token})
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    head = (await visitor.call("GET", "/poll")).json()
    assert head["events"] == [] and head["resync"] is False
    first = await _reply(live_api.url, secret, conversation_id, "one", "p1")
    second = await _reply(live_api.url, secret, conversation_id, "two", "p2")
    polled = (await visitor.call("GET", "/poll", params={"after": head["last_event_id"]})).json()
    created = [e["data"]["message_id"] for e in polled["events"] if e["type"] == "message.created"]
    assert created == [first, second]
    again = (await visitor.call("GET", "/poll", params={"after": polled["last_event_id"]})).json()
    assert [e for e in again["events"] if e["type"] == "message.created"] == []


async def test_a_reconnect_while_the_operator_replies_gets_each_reply_exactly_once(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    secret = await issue_token(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("hello")
    conversation_id = (await visitor.chat())["conversation"]["id"]
    async with visitor.stream() as stream:
        first = await _reply(live_api.url, secret, conversation_id, "first", "c1")
        await stream.until(lambda f: f.event == "message.created" and f.data["message_id"] == first)
        resume_at = stream.last_id
    # offline (a background tab, a lost network) while the operator goes on replying
    missed = [await _reply(live_api.url, secret, conversation_id, f"reply {n}", f"c-{n}") for n in range(3)]
    async with visitor.stream(last_event_id=resume_at) as stream:
        last = await _reply(live_api.url, secret, conversation_id, "after", "c-after")
        frames = await stream.until(lambda f: f.event == "message.created" and f.data["message_id"] == last)
    created = [f.data["message_id"] for f in frames if f.event == "message.created"]
    assert created == [*missed, last]


async def test_a_visitor_sees_only_their_own_conversation(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    secret = await issue_token(clean_db)
    ann, bob = Visitor(live_api.url, inbox_id), Visitor(live_api.url, inbox_id)
    await ann.start()
    await bob.start()
    same_client_id = new_client_id()
    await ann.say("ann's secret", same_client_id)
    await bob.say("bob's question", same_client_id)  # the same client id is bob's own
    ann_chat, bob_chat = await ann.chat(), await bob.chat()
    assert [m["html"] for m in ann_chat["messages"]] == ["ann's secret"]
    assert [m["html"] for m in bob_chat["messages"]] == ["bob's question"]
    reply = await _reply(live_api.url, secret, ann_chat["conversation"]["id"], "for ann", "a1")
    # bob acknowledging ann's reply changes nothing of hers
    await bob.call("POST", "/ticks", json={"read_up_to": reply})
    assert (await _status(clean_db, reply)).read_at is None
    async with clean_db() as db:
        assert await db.scalar(select(func.count()).select_from(Conversation)) == 2


async def _cabinet_typing(base_url: str, cookie: str, conversation_id: int, *, note: bool = False) -> None:
    async with httpx.AsyncClient(base_url=base_url, cookies={"sb_session": cookie}) as http:
        form = {"csrf_token": "c", "note": "true" if note else "false"}
        answer = await http.post(f"/conversations/{conversation_id}/typing", data=form)
    assert answer.status_code == 204, answer.text


async def test_typing_goes_both_ways_live(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("hi")
    conversation_id = (await visitor.chat())["conversation"]["id"]
    _, cookie = await staff(clean_db, OperatorRole.SUPERVISOR)
    async with open_stream(live_api.url, cookie) as cabinet:
        assert (await visitor.call("POST", "/typing")).status_code == 204
        frames = await cabinet.until(lambda f: f.event == "contact.typing")
        assert frames[-1].data["conversation_id"] == conversation_id

    # the operator types in the cabinet's composer: the widget's stream hears of it
    operator_id, operator_cookie = await staff(clean_db)
    async with clean_db() as db, db.begin():
        (await db.get(Conversation, conversation_id)).assignee_id = operator_id
    async with visitor.stream() as stream, open_stream(live_api.url, cookie) as cabinet:
        # a private note and a supervisor who only watches: the visitor hears nothing
        await _cabinet_typing(live_api.url, operator_cookie, conversation_id, note=True)
        await _cabinet_typing(live_api.url, cookie, conversation_id)
        await visitor.say("marker one")
        frames = await stream.until(lambda f: f.event == "message.created" and f.data["direction"] == "in")
        assert [f for f in frames if f.event == "operator.typing"] == []
        # a burst of keystrokes reaches the visitor once (throttled); colleagues hear each one
        for _ in range(5):
            await _cabinet_typing(live_api.url, operator_cookie, conversation_id)
        await visitor.say("marker two")
        frames = await stream.until(lambda f: f.event == "message.created" and f.data["direction"] == "in")
        typing = [f.data for f in frames if f.event == "operator.typing"]
        assert [(t["conversation_id"], t["operator_id"]) for t in typing] == [(conversation_id, operator_id)]
        visitor_says = lambda f: f.event == "message.created" and f.data["direction"] == "in"  # noqa: E731
        staff_frames = await cabinet.until(visitor_says) + await cabinet.until(visitor_says)
        staff_typing = [f.data for f in staff_frames if f.event == "operator.typing"]
        assert len(staff_typing) == 7 and not any(t["for_visitor"] for t in staff_typing)


async def test_the_visitor_rates_a_resolved_conversation_once_in_the_inbox_scale(clean_db, live_api):

    inbox_id = await widget_inbox(clean_db, rating_mode="nps")
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("hi")
    chat = await visitor.chat()
    assert chat["conversation"]["rating"] == {"mode": "nps", "score": None}
    async with clean_db() as db, db.begin():
        conversation = await db.get(Conversation, chat["conversation"]["id"])
        conversation.status = ConversationStatus.RESOLVED
    assert (await visitor.call("POST", "/rating", json={"score": 11})).status_code == 422
    rated = await visitor.call("POST", "/rating", json={"score": 0, "comment": "  too slow  "})
    assert rated.status_code == 200 and rated.json()["conversation"]["rating"]["score"] == 0
    again = await visitor.call("POST", "/rating", json={"score": 10})
    assert again.json()["conversation"]["rating"]["score"] == 0  # the first score stands
    async with clean_db() as db:
        stored = await db.get(Conversation, chat["conversation"]["id"])
    assert (stored.rating, stored.rating_comment) == (0, "too slow") and stored.rated_at is not None
