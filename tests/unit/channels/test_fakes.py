"""The fakes refuse what the providers refuse, and their scripting does what it says."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes import RETRYABLE_FAULTS, Fault
from tests.fakes.max import TOKEN as MAX_TOKEN, FakeMax
from tests.fakes.telegram import TOKEN as TG_TOKEN, FakeTelegram
from tests.unit.channels.support import SSL_CONTEXT

# One client for the module: a new httpx client builds an SSL context, ~40 ms each time.
CLIENT = httpx.Client(verify=SSL_CONTEXT)


def tg(fake: FakeTelegram, method: str, **kwargs: object) -> httpx.Response:
    return CLIENT.post(f"{fake.base_url}/bot{TG_TOKEN}/{method}", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "status", "description"),
    [
        ({"chat_id": 1}, 400, "Bad Request: message text is empty"),
        ({"chat_id": 1, "text": "   "}, 400, "Bad Request: message text is empty"),
        ({"chat_id": 1, "text": "x" * 4097}, 400, "Bad Request: message is too long"),
        ({"chat_id": 1, "text": "<b>bold", "parse_mode": "HTML"}, 400, "Can't find end tag"),
        ({"chat_id": 1, "text": "a < b", "parse_mode": "HTML"}, 400, "Unsupported start tag"),
        ({"chat_id": 1, "text": "fish & chips", "parse_mode": "HTML"}, 400, "Unescaped &"),
        ({"chat_id": 1, "text": "<script>x</script>", "parse_mode": "HTML"}, 400, 'Unsupported start tag "script"'),
        ({"chat_id": 1, "text": "<b>x</i>", "parse_mode": "HTML"}, 400, "Unmatched end tag"),
        ({"chat_id": 1, "text": "x", "parse_mode": "BBCode"}, 400, "unsupported parse_mode"),
        ({"chat_id": {"nested": 1}, "text": "x"}, 400, "invalid parameter chat_id"),
    ],
)
def test_telegram_refuses_bad_messages(fake_telegram: FakeTelegram, body: dict, status: int, description: str) -> None:
    resp = tg(fake_telegram, "sendMessage", json=body)
    assert resp.status_code == status
    answer = resp.json()
    assert answer["ok"] is False and answer["error_code"] == status
    assert description in answer["description"]
    assert fake_telegram.sent_messages() == []


def test_telegram_counts_html_limit_on_visible_text(fake_telegram: FakeTelegram) -> None:
    text = "<b>" + "&amp;" * 4096 + "</b>"  # 4096 visible characters
    assert tg(fake_telegram, "sendMessage", json={"chat_id": 1, "text": text, "parse_mode": "HTML"}).status_code == 200


def test_telegram_caption_and_auth(fake_telegram: FakeTelegram) -> None:
    resp = tg(
        fake_telegram,
        "sendPhoto",
        data={"chat_id": "1", "caption": "c" * 1025},
        files={"photo": ("p.jpg", b"jpg", "image/jpeg")},
    )
    assert resp.json()["description"] == "Bad Request: message caption is too long"
    resp = tg(fake_telegram, "sendDocument", data={"chat_id": "1"})
    assert resp.json()["description"] == "Bad Request: there is no document in the request"
    resp = CLIENT.post(f"{fake_telegram.base_url}/bot1:wrong/getMe")
    assert (resp.status_code, resp.json()["description"]) == (401, "Unauthorized")
    assert tg(fake_telegram, "sendSticker", json={}).status_code == 404
    assert tg(fake_telegram, "getMe").json()["result"]["is_bot"] is True


def test_telegram_webhook_must_be_https(fake_telegram: FakeTelegram) -> None:
    fake_telegram.allow_http_webhooks = False
    try:
        resp = tg(fake_telegram, "setWebhook", json={"url": "http://plain.example/hook"})
    finally:
        fake_telegram.allow_http_webhooks = True
    assert resp.json()["description"] == "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"


def test_max_refuses_what_max_refuses(fake_max: FakeMax) -> None:
    url = f"{fake_max.base_url}/messages"
    ok = {"Authorization": MAX_TOKEN}
    assert (
        CLIENT.post(
            url, params={"chat_id": 1}, json={"text": "x"}, headers={"Authorization": f"Bearer {MAX_TOKEN}"}
        ).status_code
        == 401
    )
    assert CLIENT.post(url, params={"chat_id": 1, "access_token": MAX_TOKEN}, json={"text": "x"}).status_code == 401
    too_long = CLIENT.post(url, params={"chat_id": 1}, json={"text": "x" * 4001}, headers=ok)
    assert too_long.status_code == 400 and "message is too long" in too_long.json()["message"]
    typo = CLIENT.post(url, params={"chat_id": 1}, json={"text": "x", "parse_mode": "html"}, headers=ok)
    assert (typo.status_code, typo.json()["code"]) == (400, "proto.payload")
    bad_format = CLIENT.post(url, params={"chat_id": 1}, json={"text": "x", "format": "bbcode"}, headers=ok)
    assert bad_format.status_code == 400
    no_target = CLIENT.post(url, json={"text": "x"}, headers=ok)
    assert no_target.status_code == 400
    unknown_token = CLIENT.post(
        url, params={"chat_id": 1}, json={"attachments": [{"type": "file", "payload": {"token": "forged"}}]}, headers=ok
    )
    assert unknown_token.json()["message"] == "attachments: unknown attachment token"
    assert (
        CLIENT.post(f"{fake_max.base_url}/chats/1/actions", json={"action": "dancing"}, headers=ok).status_code == 400
    )
    assert CLIENT.post(f"{fake_max.base_url}/answers", json={}, headers=ok).status_code == 400
    assert CLIENT.get(f"{fake_max.base_url}/me", headers=ok).json()["is_bot"] is True
    assert fake_max.sent_messages() == []


def test_fault_scoping_by_chat_and_count(fake_telegram: FakeTelegram) -> None:
    fake_telegram.fail_next(Fault.SERVER_ERROR, count=2, chat_id=7)
    statuses = [tg(fake_telegram, "sendMessage", json={"chat_id": c, "text": "x"}).status_code for c in (8, 7, 8, 7, 7)]
    assert statuses == [200, 500, 200, 500, 200]
    fake_telegram.fail_next(Fault.UNAVAILABLE, count=None, method="sendChatAction")
    assert [
        tg(fake_telegram, "sendChatAction", json={"chat_id": 1, "action": "typing"}).status_code for _ in range(3)
    ] == [503] * 3
    fake_telegram.clear_faults()
    assert tg(fake_telegram, "sendChatAction", json={"chat_id": 1, "action": "typing"}).status_code == 200
    assert [r.fault for r in fake_telegram.requests(chat_id=7)] == [Fault.SERVER_ERROR, Fault.SERVER_ERROR, None]


def test_random_faults_are_reproducible(fake_max: FakeMax) -> None:
    def run() -> list[int]:
        fake_max.reset()
        fake_max.fail_randomly(0.3, seed=42)
        codes = []
        for _ in range(60):
            try:
                codes.append(CLIENT.get(f"{fake_max.base_url}/me", headers={"Authorization": MAX_TOKEN}).status_code)
            except httpx.TransportError:
                codes.append(0)  # dropped
        return codes

    first, second = run(), run()
    assert first == second
    failures = sum(code != 200 for code in first)
    assert 8 <= failures <= 30
    assert {r.fault for r in fake_max.requests() if r.fault} <= RETRYABLE_FAULTS


def test_rate_meter_counts_and_enforces(fake_telegram: FakeTelegram) -> None:
    for _ in range(3):
        assert tg(fake_telegram, "sendMessage", json={"chat_id": 5, "text": "x"}).status_code == 200
    assert fake_telegram.rate_violations() == {"per_chat": 2, "per_group_minute": 0, "per_bot": 0}
    assert fake_telegram.would_be_rate_limited == 2
    fake_telegram.reset()
    fake_telegram.enforce_rate_limits = True
    try:
        assert tg(fake_telegram, "sendMessage", json={"chat_id": 5, "text": "x"}).status_code == 200
        refused = tg(fake_telegram, "sendMessage", json={"chat_id": 5, "text": "x"})
        assert refused.status_code == 429
        assert refused.json()["parameters"]["retry_after"] == 1
        assert tg(fake_telegram, "sendMessage", json={"chat_id": 6, "text": "x"}).status_code == 200  # another chat
    finally:
        fake_telegram.enforce_rate_limits = False
    assert len(fake_telegram.sent_messages()) == 2


def test_max_bot_rate_counts_every_request(fake_max: FakeMax) -> None:
    for _ in range(32):
        CLIENT.get(f"{fake_max.base_url}/me", headers={"Authorization": MAX_TOKEN})
    assert fake_max.rate_violations() == {"per_chat": 0, "per_bot": 2}


def test_chat_faults_persist(fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_chat_fault(9, Fault.MIGRATED, migrate_to=-100777)
    for _ in range(2):
        answer = tg(fake_telegram, "sendMessage", json={"chat_id": 9, "text": "x"}).json()
        assert answer["parameters"] == {"migrate_to_chat_id": -100777}
    fake_telegram.set_chat_fault(9, None)
    assert tg(fake_telegram, "sendMessage", json={"chat_id": 9, "text": "x"}).json()["ok"] is True
    with pytest.raises(ValueError):
        fake_telegram.fail_next(Fault.NOT_READY)


async def test_async_context_manager() -> None:
    async with FakeMax() as fake, httpx.AsyncClient(verify=SSL_CONTEXT) as http:
        resp = await http.get(f"{fake.base_url}/me", headers={"Authorization": fake.token})
        assert resp.status_code == 200
    assert fake.port is None


def test_injected_updates_are_validated(fake_telegram: FakeTelegram, fake_max: FakeMax) -> None:
    with pytest.raises(ValueError):
        fake_telegram.inject_update({"message": {"text": "no chat, no date"}})
    with pytest.raises(ValueError):
        fake_max.inject_update({"update_type": "bot_started", "timestamp": 1})
