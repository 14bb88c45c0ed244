"""What strangers get from the widget's API: forged or expired tokens 401, sites the inbox does
not allow 403, ids that are not a live widget 404, bad input 422, too many requests 429 with
Retry-After; every refusal problem+json, and nothing of another visitor's."""

from __future__ import annotations

import math
import time
from datetime import timedelta

import altcha
import httpx

from domain.enums import ChannelKind
from infra.models import Inbox
from services.widget_sessions import issue, signing_key
from tests.integration.api_support import assert_problem, client, issue_token
from tests.integration.widget_support import Visitor, widget_inbox


def _settings(live_api):
    return live_api._server.config.app.state.settings


async def test_a_forged_expired_or_foreign_token_is_refused(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    other_inbox = await widget_inbox(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    await visitor.say("mine")
    payload, signature = visitor.token.split(".")
    key = signing_key(_settings(live_api))
    expired, _ = issue(key, inbox_id, "v-someone", timedelta(seconds=-1))
    wrong_key, _ = issue(b"not our key", inbox_id, "v-someone", timedelta(days=1))
    for token in (
        None,
        "garbage",
        f"{payload}.{signature[:-2]}AA",  # a changed signature
        f"{payload[:-2]}xx.{signature}",  # a changed payload
        expired,
        wrong_key,
    ):
        stranger = Visitor(live_api.url, inbox_id, token=token)
        for method, path in (("GET", "/chat"), ("GET", "/poll"), ("POST", "/ticks")):
            assert_problem(await stranger.call(method, path, json={}), 401)
        assert_problem(await stranger.say("let me in"), 401)
        async with httpx.AsyncClient(base_url=live_api.url) as http:
            stream = await http.get(
                "/widget/v1/events", params={"token": token or ""}, headers={"origin": live_api.url}
            )
        assert_problem(stream, 401)
    # a token of a switched-off inbox names nobody any more
    async with clean_db() as db, db.begin():
        (await db.get(Inbox, inbox_id)).is_active = False
    assert_problem(await visitor.call("GET", "/chat"), 401)
    # another inbox does not take a token of this one: a new visitor starts there
    moved = Visitor(live_api.url, other_inbox, token=visitor.token)
    await moved.start()
    assert moved.token != visitor.token and (await moved.chat())["conversation"] is None


async def test_ids_that_are_not_a_live_widget_inbox_are_not_found(clean_db, live_api):
    async with clean_db() as db, db.begin():
        telegram = Inbox(name="Bot", channel=ChannelKind.TELEGRAM)
        db.add(telegram)
        await db.flush()
    for inbox_id in (telegram.id, 987654321):
        assert_problem(await Visitor(live_api.url, inbox_id).start(), 404)
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        junk = await http.post("/widget/v1/inboxes/abc/sessions", json={}, headers={"origin": live_api.url})
    assert junk.status_code == 404


async def test_only_allowed_sites_may_use_the_chat(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db, allowed_domains=["shop.example.com", "*.example.org"])
    for origin in ("https://www.example.org", "https://example.org", "https://shop.example.com"):
        allowed = Visitor(live_api.url, inbox_id, origin=origin)
        assert (await allowed.start()).status_code == 201, origin
    for origin in ("https://evil.example.net", "https://shop.example.com.evil.net", "https://notexample.org"):
        stranger = Visitor(live_api.url, inbox_id, origin=origin)
        body = assert_problem(await stranger.start(), 403)
        assert body["type"] == "urn:switchboard:problem:widget-foreign-site"
        # a stolen token does not help a foreign page either
        stranger.token = allowed.token
        assert_problem(await stranger.say("hi"), 403)
    # a request that names no site at all (no Origin, no Referer) is not from a page of the site
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        bare = await http.post(f"/widget/v1/inboxes/{inbox_id}/sessions", json={})
    assert_problem(bare, 403)
    # the Referer names the site where a browser sends no Origin (a GET)
    answer = await httpx.AsyncClient(base_url=live_api.url).get(
        "/widget/v1/chat",
        headers={"referer": "https://shop.example.com/cart", "authorization": f"Bearer {allowed.token}"},
    )
    assert answer.status_code == 200, answer.text


async def test_bad_input_is_refused_with_problem_json(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    for body in (
        {"client_id": "short", "text": "hi"},
        {"client_id": "a" * 65, "text": "hi"},
        {"client_id": "bad id with spaces", "text": "hi"},
        {"client_id": "abcdefgh12", "text": ""},
        {"client_id": "abcdefgh12", "text": "x" * 4001},
        {"client_id": "abcdefgh12", "text": "hi", "extra": 1},
        {"text": "hi"},
    ):
        assert_problem(await visitor.call("POST", "/messages", json=body), 422)
    assert_problem(await visitor.call("POST", "/messages", content=b"{not json"), 422)
    assert_problem(await visitor.call("GET", "/chat", params={"after": "-1"}), 422)
    assert_problem(await visitor.call("POST", "/ticks", json={"read_up_to": 0}), 422)
    assert_problem(await visitor.call("POST", "/rating", json={"score": 5}), 404)  # nothing to rate yet
    await visitor.say("hello")
    assert_problem(await visitor.call("POST", "/rating", json={"score": 5}), 422)  # not resolved
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        resumed = await http.get(
            "/widget/v1/events",
            params={"token": visitor.token},
            headers={"origin": live_api.url, "last-event-id": "not-a-number"},
        )
    assert_problem(resumed, 400)


async def test_guessed_conversation_and_message_ids_reach_nothing(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    secret = await issue_token(clean_db)
    ann, eve = Visitor(live_api.url, inbox_id), Visitor(live_api.url, inbox_id)
    await ann.start()
    await eve.start()
    await ann.say("my address is 1 Main St")
    ann_chat = await ann.chat()
    async with client(live_api.url, secret) as api:
        reply = await api.post(
            f"/api/v1/conversations/{ann_chat['conversation']['id']}/messages",
            json={"text": "noted"},
            headers={"Idempotency-Key": "g1"},
        )
    # eve has no conversation: no history, no events, no stream, whatever she asks for
    assert (await eve.chat(after=0))["messages"] == []
    polled = await eve.call("GET", "/poll", params={"after": 0})
    assert polled.json()["events"] == []
    async with httpx.AsyncClient(base_url=live_api.url) as http:
        stream = await http.get("/widget/v1/events", params={"token": eve.token}, headers={"origin": live_api.url})
    assert_problem(stream, 404)
    assert_problem(await eve.call("POST", "/ticks", json={"read_up_to": reply.json()["id"]}), 404)
    # once she writes, she sees her own conversation only, from any cursor
    head = (await eve.call("GET", "/poll")).json()["last_event_id"]
    await eve.say("hi")
    eve_chat = await eve.chat(after=0)
    assert [m["html"] for m in eve_chat["messages"]] == ["hi"]
    assert eve_chat["conversation"]["id"] != ann_chat["conversation"]["id"]
    events = (await eve.call("GET", "/poll", params={"after": head})).json()["events"]
    assert {e["data"]["conversation_id"] for e in events} == {eve_chat["conversation"]["id"]}
    # a cursor from before the log's oldest event: reload, and nothing of anyone else's
    assert (await eve.call("GET", "/poll", params={"after": 0})).json() | {"last_event_id": 0} == {
        "events": [],
        "resync": True,
        "last_event_id": 0,
    }


def solve(challenge: dict) -> str:
    """What the widget's solver does, through the package's own solver."""
    found = altcha.solve_challenge_v1(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxNumber"], 0
    )
    payload = altcha.PayloadV1(
        challenge["algorithm"], challenge["challenge"], found.number, challenge["salt"], challenge["signature"]
    )
    return payload.to_base64()


async def test_new_sessions_per_address_need_a_challenge_then_are_limited(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    free = [await Visitor(live_api.url, inbox_id).start() for _ in range(3)]
    assert [a.status_code for a in free] == [201] * 3
    asked = assert_problem(await Visitor(live_api.url, inbox_id).start(), 403)
    assert asked["type"] == "urn:switchboard:problem:widget-challenge" and asked["challenge"]["maxNumber"] > 0
    solution = solve(asked["challenge"])
    solved = await Visitor(live_api.url, inbox_id).call(
        "POST", f"/inboxes/{inbox_id}/sessions", json={"captcha": solution}
    )
    assert solved.status_code == 201, solved.text
    # a solution is taken once; a forged one or another key's is no solution
    again = await Visitor(live_api.url, inbox_id).call(
        "POST", f"/inboxes/{inbox_id}/sessions", json={"captcha": solution}
    )
    assert assert_problem(again, 403)["challenge"]["challenge"] != asked["challenge"]["challenge"]
    forged = dict(asked["challenge"], signature="0" * 64)
    for bad in (solve(forged), "bm90IGEgc29sdXRpb24=", "x" * 3000):
        answer = await Visitor(live_api.url, inbox_id).call(
            "POST", f"/inboxes/{inbox_id}/sessions", json={"captcha": bad}
        )
        assert answer.status_code in (403, 422)
    # solved or not, an address opens at most 10 at once, then one every 6 minutes
    answers = []
    for _ in range(7):
        challenge = (await Visitor(live_api.url, inbox_id).start()).json()["challenge"]
        answers.append(
            await Visitor(live_api.url, inbox_id).call(
                "POST", f"/inboxes/{inbox_id}/sessions", json={"captcha": solve(challenge)}
            )
        )
    assert [a.status_code for a in answers] == [201] * 6 + [429]
    refused = assert_problem(answers[-1], 429)
    assert int(answers[-1].headers["retry-after"]) > 0 and "try again" in refused["detail"]
    # a visitor who has a token renews it: that is not a new session
    returning = Visitor(live_api.url, inbox_id, token=free[0].json()["token"])
    assert (await returning.start()).status_code == 201


async def test_sending_is_limited_per_visitor(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    await visitor.start()
    began = time.monotonic()
    answers = [await visitor.say(f"message {n}") for n in range(40)]
    elapsed = time.monotonic() - began
    admitted = sum(a.status_code == 201 for a in answers)
    # a burst of 20, then one a second
    assert 20 <= admitted <= 20 + math.ceil(elapsed) + 1, (admitted, elapsed)
    refused = next(a for a in answers if a.status_code != 201)
    assert_problem(refused, 429)
    assert refused.headers["retry-after"] == "1"
