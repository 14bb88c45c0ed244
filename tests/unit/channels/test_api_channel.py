"""The API channel's adapter: what an integrator posts becomes an InboundEvent (or a refusal
that names the field), and a reply is handed over without calling anyone."""

from datetime import UTC, datetime

import httpx
import pytest

from channels.api import ApiChannelAdapter
from channels.base import MalformedUpdate
from domain.contracts import InboundKind, OutboundMessage
from domain.enums import ChannelKind

POSTED = {
    "contact": {"id": "crm-42", "name": "Ann", "phone": "+7 999 123-45-67"},
    "message": {"id": "crm-msg-1001", "text": "Where is my order?", "sent_at": "2026-11-27T09:14:03Z"},
}


def test_a_posted_message_is_an_inbound_event_keyed_by_the_integrators_ids():
    [event] = ApiChannelAdapter(httpx.AsyncClient()).parse_update(5, POSTED)
    assert (event.inbox_id, event.channel, event.kind) == (5, ChannelKind.API, InboundKind.MESSAGE)
    assert (event.provider_user_id, event.provider_chat_id, event.provider_message_id) == (
        "crm-42",
        "crm-42",
        "crm-msg-1001",
    )
    assert event.text == "Where is my order?" and event.profile.display_name == "Ann"
    assert event.provider_time == datetime(2026, 11, 27, 9, 14, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"contact": {"id": "x"}},
        {"contact": {"id": ""}, "message": {"id": "m", "text": "hi"}},
        {"contact": {"id": "x"}, "message": {"id": "m", "text": ""}},
        {"contact": {"id": "x"}, "message": {"id": "m", "text": "hi", "sent_at": "2026-11-27T09:14:03"}},
        {**POSTED, "extra": 1},
    ],
)
def test_what_is_not_a_message_is_refused(payload):
    with pytest.raises(MalformedUpdate):
        ApiChannelAdapter(httpx.AsyncClient()).parse_update(5, payload)


async def test_sending_hands_the_reply_over_without_a_call():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the API channel called {request.url}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        message = OutboundMessage(
            message_id=77, conversation_id=3, inbox_id=5, channel=ChannelKind.API, provider_chat_id="crm-42", text="Hi"
        )
        sent = await ApiChannelAdapter(http).send({}, message)
    assert sent.provider_message_ids == ["77"]
