"""The cabinet's event stream (GET /events) against a live api: each SSE guarantee through the
real path (committed row -> NOTIFY -> hub -> visibility filter -> stream)."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from domain.enums import OperatorRole
from infra.event_log import publish
from tests.integration.conftest import wait_until
from tests.integration.realtime_support import branch, commit, open_stream, staff, status_event

pytestmark = pytest.mark.usefixtures("clean_db")


def _hub(live_api):
    return live_api._server.config.app.state.hub


async def _marker(factory, operator_id: int, conversation_id: int = 999_999):
    """An event only `operator_id` and supervisors see: everything committed before it has been
    dispatched when it arrives (one listener, commit order)."""
    event = status_event(conversation_id, None, operator_id)
    await commit(factory, event)
    return event


async def test_requires_a_session_and_a_sane_last_event_id(live_api, clean_db):
    _, cookie = await staff(clean_db)
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        anonymous = await http.get("/events")
        http.cookies.set("sb_session", "forged")
        forged = await http.get("/events")
        http.cookies.set("sb_session", cookie)
        garbage = await http.get("/events", headers={"last-event-id": "abc"})
    assert anonymous.status_code == forged.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert garbage.status_code == 400 and garbage.json()["status"] == 400


async def test_an_operator_never_receives_an_event_about_a_conversation_they_may_not_see(live_api, clean_db):
    mine, other = await branch(clean_db), await branch(clean_db)
    me, cookie = await staff(clean_db, branch_id=mine)
    colleague, _ = await staff(clean_db, branch_id=mine)
    _, supervisor_cookie = await staff(clean_db, OperatorRole.SUPERVISOR, branch_id=other)
    visible = [
        status_event(1, mine, me),  # assigned to me
        status_event(2, mine, None),  # my branch's pool
        status_event(3, None, me),  # assigned to me, not routed yet
        status_event(4, other, me),  # assigned to me in another branch
    ]
    hidden = [
        status_event(5, mine, colleague),  # a colleague's
        status_event(6, other, None),  # another branch's pool
        status_event(7, None, None),  # not routed: supervisors only
        status_event(8, other, colleague + 1000),  # guessed ids: someone who does not exist
        status_event(2**31, 2**31, None),
        status_event(9, 0, 0),
    ]
    async with open_stream(live_api.url, cookie) as stream, open_stream(live_api.url, supervisor_cookie) as watcher:
        for event in hidden[:3] + visible[:2] + hidden[3:] + visible[2:]:
            await commit(clean_db, event)
        marker = await _marker(clean_db, me)
        got = await stream.until(lambda f: f.data == marker.payload())
        everything = await watcher.until(lambda f: f.data == marker.payload())
    assert [f.data for f in got] == [e.payload() for e in visible] + [marker.payload()]
    assert {f.event for f in got} == {"message.status_changed"}
    assert len(everything) == len(visible) + len(hidden) + 1  # supervisors see all of it


async def test_an_operator_without_a_branch_gets_no_pool(live_api, clean_db):
    me, cookie = await staff(clean_db, branch_id=None)
    async with open_stream(live_api.url, cookie) as stream:
        await commit(clean_db, status_event(1, None, None))  # unrouted, unassigned
        marker = await _marker(clean_db, me)
        got = await stream.until(lambda f: f.data == marker.payload())
    assert [f.data for f in got] == [marker.payload()]


async def test_a_conversation_taken_away_still_reaches_who_had_it(live_api, clean_db):
    from domain.events import AssignmentReason, ConversationAssigned, ConversationIds

    mine, other = await branch(clean_db), await branch(clean_db)
    me, cookie = await staff(clean_db, branch_id=mine)
    stranger, _ = await staff(clean_db, branch_id=other)
    moved = ConversationAssigned.of(
        ConversationIds(conversation_id=1, inbox_id=1, branch_id=other, assignee_id=stranger),
        previous_branch_id=mine,
        previous_assignee_id=me,
        reason=AssignmentReason.TRANSFERRED,
        actor_operator_id=me,
    )
    async with open_stream(live_api.url, cookie) as stream:
        await commit(clean_db, moved)
        frame = await stream.next()
    assert frame.event == "conversation.assigned" and frame.data == moved.payload()


async def test_reconnecting_with_last_event_id_gets_each_missed_event_once_in_order(live_api, clean_db):
    mine = await branch(clean_db)
    me, cookie = await staff(clean_db, branch_id=mine)
    async with open_stream(live_api.url, cookie) as stream:
        await commit(clean_db, status_event(1, mine, me, message_id=1))
        first = await stream.next()
    assert first.id is not None
    missed = [status_event(1, mine, me, message_id=n) for n in range(2, 12)]
    for n, event in enumerate(missed):
        await commit(clean_db, event, status_event(50 + n, mine + 1000, None))  # and one not for me
    async with open_stream(live_api.url, cookie, last_event_id=first.id) as stream:
        await commit(clean_db, status_event(1, mine, me, message_id=99))  # live, after the replay
        got = await stream.until(lambda f: f.data.get("message_id") == 99)
    assert [f.data["message_id"] for f in got] == [*range(2, 12), 99]
    ids = [f.id for f in got]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > first.id


async def test_a_rolled_back_transaction_announces_nothing(live_api, clean_db):
    me, cookie = await staff(clean_db)
    async with open_stream(live_api.url, cookie) as stream:
        async with clean_db() as db, db.begin() as tx:
            await publish(db, status_event(1, None, me, message_id=13))
            await tx.rollback()
        marker = await _marker(clean_db, me)
        got = await stream.until(lambda f: f.data == marker.payload())
    assert [f.data for f in got] == [marker.payload()]


async def test_two_writers_committing_out_of_id_order_still_give_a_gapless_commit_ordered_stream(live_api, clean_db):
    me, cookie = await staff(clean_db)
    early, late = status_event(1, None, me, message_id=1), status_event(1, None, me, message_id=2)
    async with open_stream(live_api.url, cookie) as stream:
        async with clean_db() as first, clean_db() as second:
            await first.begin()
            await publish(first, early)  # inserted first ...
            await second.begin()
            await publish(second, late)
            await second.commit()  # ... committed second
            seen_late = await stream.next()
            await first.commit()
        seen_early = await stream.next()
    assert (seen_late.data["message_id"], seen_early.data["message_id"]) == (2, 1)
    assert seen_early.id > seen_late.id  # ids follow commits, not inserts
    # a client that dropped right after the later insert's commit resumes and still gets it
    async with open_stream(live_api.url, cookie, last_event_id=seen_late.id) as stream:
        marker = await _marker(clean_db, me)
        got = await stream.until(lambda f: f.data == marker.payload())
    assert [f.data for f in got] == [early.payload(), marker.payload()]


async def test_a_stalled_subscriber_does_not_delay_the_others_and_is_cut_off(live_api, clean_db):
    me, cookie = await staff(clean_db)
    hub = _hub(live_api)
    before = len(hub.subscribers())
    stalled = socket.create_connection(("127.0.0.1", live_api.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(f"GET /events HTTP/1.1\r\nHost: x\r\nCookie: sb_session={cookie}\r\n\r\n".encode())
    try:
        async with open_stream(live_api.url, cookie) as healthy:
            await asyncio.sleep(0)
            # more than the kernel's socket buffers (up to 4 MB here) and the stream's queue
            total, padding = 12_000, "x" * 450
            events = [
                status_event(1, None, me, message_id=n).model_copy(update={"error": padding}) for n in range(total)
            ]
            for chunk in range(0, total, 1000):
                await commit(clean_db, *events[chunk : chunk + 1000])
            # A hub that waited on the stalled socket would hold the healthy stream for as long as
            # that socket stays open (for good): the bound only has to outlast a loaded machine.
            got = await healthy.until(lambda f: f.data.get("message_id") == total - 1, timeout=60)
            assert [f.data["message_id"] for f in got] == list(range(total))
            # the stalled one was dropped from the hub (and its stream task ended, closing the socket)
            await wait_until(lambda: len(hub.subscribers()) == before + 1, timeout=10)
    finally:
        stalled.close()


async def test_a_server_shutting_down_ends_its_streams_cleanly(app_settings, clean_db):
    from api import create_app
    from tests.conftest import LiveServer

    _, cookie = await staff(clean_db)
    server = LiveServer(create_app(app_settings)).start()
    ended = asyncio.get_running_loop().create_future()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=server.url, cookies={"sb_session": cookie}, timeout=None) as http,
            http.stream("GET", "/events") as response,
        ):
            async for _ in response.aiter_bytes():
                pass
        ended.set_result("complete")  # the final chunk came: no truncated stream for the client

    reader = asyncio.create_task(read())
    hub = server._server.config.app.state.hub
    await wait_until(lambda: len(hub.subscribers()) == 1, timeout=10)
    began = asyncio.get_running_loop().time()
    await asyncio.to_thread(server.stop)
    took = asyncio.get_running_loop().time() - began
    assert await asyncio.wait_for(ended, 5) == "complete"
    await reader
    assert took < 8, f"shutdown took {took:.1f} s"
    assert not server._thread.is_alive()
