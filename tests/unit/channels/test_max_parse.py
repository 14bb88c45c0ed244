"""Recorded MAX updates -> InboundEvents."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from maxapi.types.updates import UpdateUnionAdapter

from channels.base import MalformedUpdate
from channels.max import MaxAdapter
from channels.payload import UnreadableUpdate
from domain.contracts import AttachmentKind, InboundKind
from domain.enums import ChannelKind
from tests.unit.channels.support import PAYLOADS, SSL_CONTEXT, payload

INBOX = 9
SENT_AT = datetime(2026, 4, 1, 6, 40, 3, 399000, tzinfo=UTC)  # message.timestamp 1775025603399 ms


@pytest.fixture(scope="module")
def adapter() -> MaxAdapter:
    return MaxAdapter(httpx.AsyncClient(verify=SSL_CONTEXT), "http://unused")


def parse(adapter: MaxAdapter, name: str) -> list:
    return adapter.parse_update(INBOX, payload("max", name))


@pytest.mark.parametrize("path", sorted((PAYLOADS / "max").glob("*.json")), ids=lambda p: p.stem)
def test_fixtures_are_real_max_updates(path: Path) -> None:
    UpdateUnionAdapter.validate_python(json.loads(path.read_text()))


def test_text_message(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_created_text")
    assert event.channel == ChannelKind.MAX
    assert event.kind == InboundKind.MESSAGE
    assert event.provider_user_id == "123456789"
    assert event.provider_chat_id == "182182182"  # the dialog, not the user
    assert event.provider_message_id == "mid.000000000adf429c019d47b1ce4600ff"
    assert event.provider_time == SENT_AT  # milliseconds, UTC
    assert event.text == "Добрый день, нужна помощь"
    assert event.profile.display_name == "John Doe"
    assert event.profile.language == "ru"


def test_image(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_created_image")
    [image] = event.attachments
    assert image.kind == AttachmentKind.PHOTO
    assert image.url == "https://i.oneme.ru/i?r=BTGBPUwtwgYUeoFhO7rESmr8"
    assert image.file_id == "IXpBQ0x5aWd3Q2hWd2pwbkdxS2Vk"
    assert image.data["photo_id"] == 5541837112
    assert event.text == ""


def test_file_keeps_name_and_size(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_created_file")
    [doc] = event.attachments
    assert (doc.kind, doc.file_name, doc.size) == (AttachmentKind.DOCUMENT, "dogovor.pdf", 84211)
    assert doc.url is not None and doc.url.startswith("https://fd.oneme.ru/getfile")
    assert event.text == "Договор"


def test_video_audio_sticker(adapter: MaxAdapter) -> None:
    [video] = parse(adapter, "message_created_video")[0].attachments
    assert (video.kind, video.file_id, video.data["duration"]) == (AttachmentKind.VIDEO, "video_token_888", 15)
    [audio] = parse(adapter, "message_created_audio")[0].attachments
    assert audio.kind == AttachmentKind.VOICE
    assert audio.data["transcription"] == "перезвоните мне пожалуйста"
    [sticker] = parse(adapter, "message_created_sticker")[0].attachments
    assert (sticker.kind, sticker.data["code"]) == (AttachmentKind.STICKER, "a1b2c3")


def test_location_and_contact(adapter: MaxAdapter) -> None:
    [location] = parse(adapter, "message_created_location")[0].attachments
    assert location.data == {"latitude": 59.939095, "longitude": 30.315868}
    [contact] = parse(adapter, "message_created_contact")[0].attachments
    assert contact.kind == AttachmentKind.CONTACT
    assert contact.data == {"phone_number": "+79031234567", "name": "John Doe", "user_id": 123456789}


def test_the_senders_own_contact_card_is_their_phone(adapter: MaxAdapter) -> None:
    [own] = parse(adapter, "message_created_contact")
    assert own.profile.phone == "+79031234567"
    someone_else = payload("max", "message_created_contact")
    someone_else["message"]["body"]["attachments"][0]["payload"]["max_info"]["user_id"] = 5
    [event] = adapter.parse_update(INBOX, someone_else)
    assert event.profile.phone is None


def test_group_chats_are_not_served_and_each_is_logged_once(
    adapter: MaxAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    in_chat = payload("max", "message_created_text")
    in_chat["message"]["recipient"].update(chat_id=-68000123, chat_type="chat")
    pressed = payload("max", "message_callback")
    pressed["message"]["recipient"].update(chat_id=-68000123, chat_type="chat")
    with caplog.at_level(logging.INFO, logger="channels.groups"):
        for update in (in_chat, in_chat, pressed):
            assert adapter.parse_update(INBOX, update) == []
    assert len([r for r in caplog.records if r.name == "channels.groups"]) == 1


def test_bare_forward_takes_the_forwarded_content(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_created_forward")
    assert event.text == "Лада седан - баклажан"
    assert event.provider_message_id == "mid.000000000adf429c019d47b1ce460107"


def test_edit_uses_the_update_time(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_edited")
    assert event.kind == InboundKind.EDIT
    assert event.provider_message_id == "mid.000000000adf429c019d47b1ce4600ff"
    assert event.provider_time == datetime(2026, 4, 1, 6, 41, 4, 499000, tzinfo=UTC)


def test_callback(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "message_callback")
    assert event.kind == InboundKind.CALLBACK
    assert event.callback_id == "f9LHodD0cOJf4_DkJGeq8BkDgc5vgSwZocVrn44oirfMzUQ4mv5k"
    assert event.callback_data == "rate:4"
    assert event.provider_chat_id == "182182182"
    assert event.provider_message_id == f"callback:{event.callback_id}"
    assert event.provider_time == datetime(2026, 4, 1, 6, 58, 22, 210000, tzinfo=UTC)
    assert event.callback_label == "★★★★"


def test_bot_started_with_payload(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "bot_started")
    assert event.kind == InboundKind.STARTED
    assert event.start_payload == "branch_spb"
    assert event.provider_chat_id == "182182182"
    assert event.provider_message_id == "bot_started:182182182:1775025604499"
    assert event.profile.username == "johndoe"
    assert event.profile.language == "en"


def test_bot_stopped_is_blocked(adapter: MaxAdapter) -> None:
    [event] = parse(adapter, "bot_stopped")
    assert event.kind == InboundKind.BLOCKED
    assert event.provider_user_id == "123456789"
    assert event.provider_message_id == "bot_stopped:182182182:1775029204499"
    assert event.provider_time == datetime(2026, 4, 1, 7, 40, 4, 499000, tzinfo=UTC)
    assert parse(adapter, "bot_stopped") == [event]  # a redelivery is the same event


@pytest.mark.parametrize("name", ["message_removed", "dialog_removed"])
def test_ignored_updates(adapter: MaxAdapter, name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="channels.max.parse"):
        assert parse(adapter, name) == []
    assert any("ignoring MAX update" in r.getMessage() for r in caplog.records)


def test_messages_from_bots_are_ignored(adapter: MaxAdapter) -> None:
    update = payload("max", "message_created_text")
    update["message"]["sender"]["is_bot"] = True
    assert adapter.parse_update(INBOX, update) == []


@pytest.mark.parametrize(
    "bad",
    [
        None,
        ["update"],
        {"timestamp": 1},
        {"update_type": "message_created"},
        {"update_type": "message_created", "timestamp": 1},
        {"update_type": "message_created", "timestamp": 1, "message": {"sender": {"user_id": 1}, "body": {"mid": "m"}}},
        {"update_type": "bot_stopped", "timestamp": 1, "user": {"user_id": 1}},
    ],
)
def test_malformed(adapter: MaxAdapter, bad: object) -> None:
    with pytest.raises(MalformedUpdate):
        adapter.parse_update(INBOX, bad)


def test_no_update_cursor(adapter: MaxAdapter) -> None:
    assert adapter.update_cursor(payload("max", "bot_started")) is None


def _edited(name: str, edit) -> dict:
    update = payload("max", name)
    edit(update)
    return update


@pytest.mark.parametrize(
    "bad",
    [
        _edited("message_created_text", lambda u: u.update(message=None)),
        _edited("bot_started", lambda u: u.update(timestamp=1e25)),
        _edited("bot_started", lambda u: u.update(timestamp=10**25)),
        _edited("message_created_text", lambda u: u["message"]["body"].update(attachments="abc")),
        _edited("message_created_text", lambda u: u["message"].update(sender="x")),
        _edited("message_created_text", lambda u: u["message"]["body"].update(mid="m" * 201)),
        _edited("message_created_location", lambda u: u["message"]["body"]["attachments"][0].update(latitude="north")),
        _edited("message_created_file", lambda u: u["message"]["body"]["attachments"][0].update(size=2**64)),
        _edited("message_callback", lambda u: u["callback"].update(user=[])),
    ],
)
def test_an_update_with_a_field_of_the_wrong_type_or_range_is_unreadable(adapter: MaxAdapter, bad: dict) -> None:
    """Its update_type is there: the webhook acknowledges it instead of making MAX redeliver."""
    with pytest.raises(UnreadableUpdate, match=f"MAX {bad['update_type']}"):
        adapter.parse_update(INBOX, bad)


def test_an_attachment_of_a_type_we_skip_is_not_read(adapter: MaxAdapter) -> None:
    update = payload("max", "message_created_text")
    update["message"]["body"]["attachments"] = [{"type": "inline_keyboard", "payload": {"buttons": "not read"}}]
    [event] = adapter.parse_update(INBOX, update)
    assert event.attachments == []
