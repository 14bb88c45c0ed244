"""Inbound events carry only what the database can store."""

from datetime import UTC, datetime

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind


def test_nul_characters_from_customers_are_dropped_everywhere_they_type():
    event = InboundEvent(
        inbox_id=1,
        channel=ChannelKind.TELEGRAM,
        kind=InboundKind.MESSAGE,
        provider_user_id="1",
        provider_chat_id="1",
        provider_time=datetime.now(UTC),
        text="pasted\x00 text\x00",
        callback_data="rate:\x005",
        start_payload="\x00promo",
        profile=ContactProfile(display_name="Ann\x00", username="a\x00nn"),
    )
    assert (event.text, event.callback_data, event.start_payload) == ("pasted text", "rate:5", "promo")
    assert (event.profile.display_name, event.profile.username) == ("Ann", "ann")
    assert InboundEvent.model_validate_json(event.model_dump_json()) == event
