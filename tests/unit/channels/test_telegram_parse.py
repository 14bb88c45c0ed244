"""Recorded Telegram updates -> InboundEvents."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiogram.types import Update

from channels.base import MalformedUpdate
from channels.payload import UnreadableUpdate
from channels.telegram import TelegramAdapter
from domain.contracts import AttachmentKind, InboundKind
from domain.enums import ChannelKind, Interface
from tests.unit.channels.support import PAYLOADS, SSL_CONTEXT, payload

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)
INBOX = 7


@pytest.fixture(scope="module")
def adapter() -> TelegramAdapter:
    return TelegramAdapter(httpx.AsyncClient(verify=SSL_CONTEXT), "http://unused")


def parse(adapter: TelegramAdapter, name: str) -> list:
    return adapter.parse_update(INBOX, payload("telegram", name), received_at=NEW_YEAR)


@pytest.mark.parametrize("path", sorted((PAYLOADS / "telegram").glob("*.json")), ids=lambda p: p.stem)
def test_fixtures_are_real_telegram_updates(path: Path) -> None:
    Update.model_validate(json.loads(path.read_text()))


def test_text_message(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "text")
    assert event.inbox_id == INBOX
    assert event.channel == ChannelKind.TELEGRAM
    assert event.interface == Interface.BOT
    assert event.kind == InboundKind.MESSAGE
    assert event.provider_user_id == "111222333"
    assert event.provider_chat_id == "111222333"
    assert event.provider_message_id == "111222333:501"
    assert event.provider_time == NEW_YEAR
    assert event.provider_time.tzinfo is not None
    assert event.text == "Здравствуйте! Где мой заказ №12?"
    assert event.attachments == []
    assert event.profile.display_name == "Мария Иванова"
    assert event.profile.username == "maria_iv"
    assert event.profile.language == "ru"


def test_group_chats_are_not_served_and_each_is_logged_once(
    adapter: TelegramAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    in_group = payload("telegram", "group_text")
    in_group["message"]["chat"]["id"] = -1001000000001  # chats no other test uses: logged once per process
    joined = payload("telegram", "service_new_members")
    joined["message"]["chat"]["id"] = -1001000000001
    other_group = payload("telegram", "group_text")
    other_group["message"]["chat"]["id"] = -1001000000002
    edited = {"update_id": 9, "edited_message": in_group["message"] | {"edit_date": 1767225700}}
    pressed = payload("telegram", "callback_query")
    pressed["callback_query"]["message"]["chat"] = in_group["message"]["chat"]
    with caplog.at_level(logging.INFO, logger="channels.groups"):
        for update in (in_group, in_group, joined, edited, pressed, other_group, other_group):
            assert adapter.parse_update(INBOX, update, received_at=NEW_YEAR) == []
    logged = [r.getMessage() for r in caplog.records if r.name == "channels.groups"]
    assert len(logged) == 2 and "-1001000000001" in logged[0] and "-1001000000002" in logged[1]


def test_photo_takes_the_largest_size_and_the_caption(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "photo")
    [photo] = event.attachments
    assert photo.kind == AttachmentKind.PHOTO
    assert photo.file_id == "AgACAgIAAxkBAAIBq2Z_large"
    assert photo.size == 98012
    assert photo.mime_type == "image/jpeg"
    assert photo.data["width"] == 1280
    assert event.text == "Вот фото чека"


def test_document_keeps_name_and_mime(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "document")
    [doc] = event.attachments
    assert (doc.kind, doc.file_name, doc.mime_type, doc.size) == (
        AttachmentKind.DOCUMENT,
        "invoice.pdf",
        "application/pdf",
        48213,
    )
    assert doc.file_id == "BQACAgIAAxkBAAIBrGZ_doc"
    assert event.text == "Счёт"


def test_voice_video_sticker(adapter: TelegramAdapter) -> None:
    [voice] = parse(adapter, "voice")[0].attachments
    assert (voice.kind, voice.mime_type, voice.data["duration"]) == (AttachmentKind.VOICE, "audio/ogg", 4)
    [video] = parse(adapter, "video")[0].attachments
    assert (video.kind, video.file_name, video.file_id) == (
        AttachmentKind.VIDEO,
        "clip.mp4",
        "BAACAgIAAxkBAAIBrmZ_video",
    )
    [sticker] = parse(adapter, "sticker")[0].attachments
    assert (sticker.kind, sticker.mime_type, sticker.data["emoji"]) == (AttachmentKind.STICKER, "image/webp", "👍")


def test_location_and_contact_are_data_not_files(adapter: TelegramAdapter) -> None:
    [location] = parse(adapter, "location")[0].attachments
    assert location.kind == AttachmentKind.LOCATION
    assert location.file_id is None
    assert location.data == {"latitude": 55.751244, "longitude": 37.618423}
    [event] = parse(adapter, "contact")
    [contact] = event.attachments
    assert contact.kind == AttachmentKind.CONTACT
    assert contact.data["phone_number"] == "+79161234567"
    # the user shared their own contact: it is their phone
    assert event.profile.phone == "+79161234567"


def test_album_parts_share_media_group(adapter: TelegramAdapter) -> None:
    [first] = parse(adapter, "album_photo")
    [second] = parse(adapter, "album_video")
    assert first.media_group_id == second.media_group_id == "13598127465123456"
    assert first.provider_message_id != second.provider_message_id
    assert [first.attachments[0].kind, second.attachments[0].kind] == [AttachmentKind.PHOTO, AttachmentKind.VIDEO]


def test_edit_names_the_edited_message_and_its_edit_time(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "edited_message")
    assert event.kind == InboundKind.EDIT
    assert event.provider_message_id == "111222333:501"
    assert event.provider_time == datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    assert event.text.endswith("№13?")


def test_callback_query(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "callback_query")
    assert event.kind == InboundKind.CALLBACK
    assert event.callback_id == "4382bfdwdsb323b2d9"
    assert event.callback_data == "rate:5"
    assert event.provider_message_id == "callback:4382bfdwdsb323b2d9"
    assert event.provider_chat_id == "111222333"
    assert event.provider_time == NEW_YEAR  # callbacks carry no date: the receive time
    assert event.callback_label == "★★★★★"  # the button's text, found in the message's keyboard


def test_a_contact_card_of_someone_else_is_not_the_senders_phone(adapter: TelegramAdapter) -> None:
    update = payload("telegram", "contact")
    update["message"]["contact"]["user_id"] = 999
    [event] = adapter.parse_update(INBOX, update)
    assert event.profile.phone is None and event.attachments[0].data["phone_number"] == "+79161234567"


def test_blocked_and_unblocked_in_private_chat(adapter: TelegramAdapter) -> None:
    [blocked] = parse(adapter, "my_chat_member_kicked")
    assert blocked.kind == InboundKind.BLOCKED
    assert blocked.provider_message_id == "update:815000114"
    assert blocked.provider_time == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert blocked.provider_user_id == "111222333"
    [started] = parse(adapter, "my_chat_member_member")
    assert started.kind == InboundKind.STARTED
    assert started.provider_message_id == "update:815000115"


def test_replay_gives_identical_events(adapter: TelegramAdapter) -> None:
    for name in ("text", "my_chat_member_kicked", "callback_query"):
        assert parse(adapter, name) == parse(adapter, name)


def test_start_with_deep_link_payload(adapter: TelegramAdapter) -> None:
    [event] = parse(adapter, "start_deeplink")
    assert event.kind == InboundKind.STARTED
    assert event.start_payload == "branch_msk"
    assert event.provider_message_id == "111222333:511"


@pytest.mark.parametrize("name", ["my_chat_member_group_left", "channel_post"])
def test_ignored_updates(adapter: TelegramAdapter, name: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="channels.telegram.parse"):
        assert parse(adapter, name) == []
    assert any("ignoring Telegram" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        "update",
        {},
        {"update_id": "1", "message": {}},
        {"update_id": 5, "message": {"message_id": 1, "date": 1, "text": "no chat"}},
        {"update_id": 5, "message": {"message_id": 1, "chat": {"id": 1, "type": "private"}, "text": "no date"}},
        {"update_id": 5, "callback_query": {"from": {"id": 1}}},
    ],
)
def test_malformed(adapter: TelegramAdapter, bad: object) -> None:
    with pytest.raises(MalformedUpdate):
        adapter.parse_update(INBOX, bad)


def test_update_cursor(adapter: TelegramAdapter) -> None:
    assert adapter.update_cursor(payload("telegram", "text")) == 815000101
    assert adapter.update_cursor({"message": {}}) is None


def _with(name: str, **fields: object) -> dict:
    update = payload("telegram", name)
    update["message"].update(fields)
    return update


@pytest.mark.parametrize(
    "bad",
    [
        _with("text", text=12345),
        _with("text", date=1e20),
        _with("text", date=10**20),
        _with("text", date=-1),
        _with("photo", photo="abc"),
        _with("photo", photo=[1, 2]),
        _with("document", document="abc"),
        _with("sticker", sticker=[1]),
        _with("location", location={"latitude": 91, "longitude": 0}),
        _with("text", chat={"id": 2**63, "type": "private"}),
        _with("text", chat={"id": True, "type": "private"}),
        _with("document", document={"file_id": "x", "file_size": -5}),
    ],
)
def test_an_update_with_a_field_of_the_wrong_type_or_range_is_unreadable(adapter: TelegramAdapter, bad: dict) -> None:
    """Its update_id is there: the webhook acknowledges it instead of making Telegram redeliver."""
    with pytest.raises(UnreadableUpdate, match=f"Telegram update {bad['update_id']}"):
        adapter.parse_update(INBOX, bad)


def test_long_profile_fields_are_cut_to_their_columns(adapter: TelegramAdapter) -> None:
    update = payload("telegram", "text")
    update["message"]["from"].update(username="u" * 250, first_name="n" * 400)
    [event] = adapter.parse_update(INBOX, update)
    assert (event.profile.username, event.profile.display_name) == ("u" * 200, "n" * 300)
