"""TelegramAdapter.send and friends against the fake Bot API."""

from __future__ import annotations

import html
import random

import httpx
import pytest

from channels.telegram import TelegramAdapter
from domain.contracts import (
    ChatMigratedError,
    DeliveryError,
    OutboundAttachment,
    OutboundMessage,
    PermanentError,
    RateLimitedError,
    RecipientBlockedError,
    RetryableError,
)
from domain.enums import ChannelKind, ErrorClass, MessageFormat
from tests.fakes import Fault, telegram as fake_telegram_module
from tests.fakes.telegram import SECOND_TOKEN, FakeTelegram

CHAT = "424242"


def message(
    text: str = "hello", fmt: MessageFormat = MessageFormat.PLAIN, *atts: OutboundAttachment
) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=2,
        inbox_id=3,
        channel=ChannelKind.TELEGRAM,
        provider_chat_id=CHAT,
        text=text,
        format=fmt,
        attachments=list(atts),
    )


def attachment(attachment_id: int, name: str, mime: str, size: int = 3) -> OutboundAttachment:
    return OutboundAttachment(attachment_id=attachment_id, file_name=name, mime_type=mime, size=size, sha256="0" * 64)


async def test_plain_text(telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]) -> None:
    result = await telegram.send(tg_creds, message("a < b & c"))
    assert result.provider_message_ids == [f"{CHAT}:1"]
    [sent] = fake_telegram.sent_messages(CHAT)
    assert (sent.method, sent.text, sent.format) == ("sendMessage", "a < b & c", None)


async def test_markdown_goes_as_checked_html(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    await telegram.send(tg_creds, message("**Заказ** <12> & [трек](https://t.ru/?a=1&b=2)", MessageFormat.MARKDOWN))
    [sent] = fake_telegram.sent_messages(CHAT)
    assert sent.format == "HTML"
    assert sent.text == '<b>Заказ</b> &lt;12&gt; &amp; <a href="https://t.ru/?a=1&amp;b=2">трек</a>'


async def test_long_text_is_sent_in_ordered_parts(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    text = "\n\n".join(f"Абзац {i}: " + "слово " * 300 for i in range(6))  # ~11 000 chars
    result = await telegram.send(tg_creds, message(text, MessageFormat.MARKDOWN))
    sent = fake_telegram.sent_messages(CHAT)
    assert result.provider_message_ids == [f"{CHAT}:{i}" for i in range(1, len(sent) + 1)]
    assert len(sent) == 3
    assert all(len(m.text or "") <= 4096 for m in sent)
    assert [m.text.split(":")[0] for m in sent if m.text] == ["Абзац 0", "Абзац 2", "Абзац 4"]
    assert " ".join(html.unescape(m.text or "") for m in sent).split() == text.split()


async def test_exactly_4096_is_one_message(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    await telegram.send(tg_creds, message("я" * 4096))
    await telegram.send(tg_creds, message("я" * 4097))
    assert [len(m.text or "") for m in fake_telegram.sent_messages(CHAT)] == [4096, 4096, 1]


@pytest.mark.parametrize(
    ("fault", "error", "error_class"),
    [
        (Fault.SERVER_ERROR, RetryableError, ErrorClass.RETRYABLE),
        (Fault.BAD_GATEWAY, RetryableError, ErrorClass.RETRYABLE),
        (Fault.UNAVAILABLE, RetryableError, ErrorClass.RETRYABLE),
        (Fault.DROP, RetryableError, ErrorClass.RETRYABLE),
        (Fault.BLOCKED, RecipientBlockedError, ErrorClass.PERMANENT),
        (Fault.DEACTIVATED, RecipientBlockedError, ErrorClass.PERMANENT),
        (Fault.CHAT_NOT_FOUND, PermanentError, ErrorClass.PERMANENT),
    ],
)
async def test_faults_become_typed_errors(
    telegram: TelegramAdapter,
    fake_telegram: FakeTelegram,
    tg_creds: dict[str, str],
    fault: Fault,
    error: type[DeliveryError],
    error_class: ErrorClass,
) -> None:
    fake_telegram.fail_next(fault, method="sendMessage")
    with pytest.raises(error) as info:
        await telegram.send(tg_creds, message())
    assert type(info.value) is error
    assert info.value.error_class == error_class
    assert fake_telegram.sent_messages(CHAT) == []
    # the fault was for one request only
    assert (await telegram.send(tg_creds, message())).provider_message_ids == [f"{CHAT}:1"]


async def test_blocked_reason_is_telegrams(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    fake_telegram.set_chat_fault(CHAT, Fault.BLOCKED)
    with pytest.raises(RecipientBlockedError) as info:
        await telegram.send(tg_creds, message())
    assert info.value.reason == "Forbidden: bot was blocked by the user"
    assert info.value.provider_code == 403


async def test_rate_limit_carries_retry_after(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    fake_telegram.fail_next(Fault.RATE_LIMIT, retry_after=7)
    with pytest.raises(RateLimitedError) as info:
        await telegram.send(tg_creds, message())
    assert info.value.retry_after == 7.0
    assert info.value.error_class == ErrorClass.RATE_LIMITED


async def test_migrated_group(telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]) -> None:
    fake_telegram.fail_next(Fault.MIGRATED, migrate_to=-1009876543210)
    with pytest.raises(ChatMigratedError) as info:
        await telegram.send(tg_creds, message())
    assert info.value.new_chat_id == "-1009876543210"


async def test_timeout_is_retryable(fake_telegram: FakeTelegram, tg_creds: dict[str, str]) -> None:
    fake_telegram.fail_next(Fault.SLOW, delay=0.5)
    async with httpx.AsyncClient(timeout=0.1) as http:
        with pytest.raises(RetryableError, match="timeout"):
            await TelegramAdapter(http, fake_telegram.base_url).send(tg_creds, message())


async def test_connection_refused_is_retryable(http: httpx.AsyncClient, tg_creds: dict[str, str]) -> None:
    with pytest.raises(RetryableError, match="connection error"):
        await TelegramAdapter(http, "http://127.0.0.1:9").send(tg_creds, message())


async def test_bad_token_is_permanent(telegram: TelegramAdapter) -> None:
    with pytest.raises(PermanentError) as info:
        await telegram.send({"token": "999:wrong"}, message())
    assert info.value.provider_code == 401
    with pytest.raises(PermanentError, match="no bot token"):
        await telegram.send({}, message())


async def test_partial_failure_resumes_without_duplicates(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    text = "\n\n".join(c * 4000 for c in "abc")  # three parts
    fake_telegram.fail_next(Fault.SERVER_ERROR, method="sendMessage", after=1)
    with pytest.raises(RetryableError) as info:
        await telegram.send(tg_creds, message(text))
    assert info.value.sent_message_ids == (f"{CHAT}:1",)
    resumed = await telegram.send(tg_creds, message(text), skip_parts=len(info.value.sent_message_ids))
    assert resumed.provider_message_ids == [f"{CHAT}:2", f"{CHAT}:3"]
    assert [m.text[0] for m in fake_telegram.sent_messages(CHAT) if m.text] == ["a", "b", "c"]


async def test_photo_with_caption(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    result = await telegram.send(
        tg_creds,
        message("**Чек** & квитанция", MessageFormat.MARKDOWN, attachment(5, "check.png", "image/png")),
        {5: png},
    )
    assert result.provider_message_ids == [f"{CHAT}:1"]
    [sent] = fake_telegram.sent_messages(CHAT)
    assert sent.method == "sendPhoto"
    assert sent.text == "<b>Чек</b> &amp; квитанция"
    assert [(f.field, f.filename, f.content_type, f.content) for f in sent.files] == [
        ("photo", "check.png", "image/png", png)
    ]


async def test_long_text_then_documents(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    msg = message(
        "x" * 2000, MessageFormat.PLAIN, attachment(1, "a.pdf", "application/pdf"), attachment(2, "b.gif", "image/gif")
    )
    result = await telegram.send(tg_creds, msg, {1: b"%PDF-1.7", 2: b"GIF89a"})
    assert len(result.provider_message_ids) == 3
    sent = fake_telegram.sent_messages(CHAT)
    assert [m.method for m in sent] == ["sendMessage", "sendDocument", "sendDocument"]  # gif: not a photo
    assert [m.text for m in sent[1:]] == [None, None]
    assert [f.filename for m in sent[1:] for f in m.files] == ["a.pdf", "b.gif"]


async def test_missing_attachment_content_is_permanent(telegram: TelegramAdapter, tg_creds: dict[str, str]) -> None:
    with pytest.raises(PermanentError, match="attachment 9"):
        await telegram.send(tg_creds, message("", MessageFormat.PLAIN, attachment(9, "a.pdf", "application/pdf")), {})


async def test_typing_and_callback_answer(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    await telegram.send_typing(tg_creds, CHAT)
    pressed = fake_telegram.make_callback(int(CHAT), "rate:5")["callback_query"]["id"]
    await telegram.answer_callback(tg_creds, pressed, "Спасибо!")
    [typing] = fake_telegram.requests("sendChatAction")
    assert typing.params == {"chat_id": CHAT, "action": "typing"}
    [answer] = fake_telegram.requests("answerCallbackQuery")
    assert answer.params == {"callback_query_id": pressed, "text": "Спасибо!"}
    assert answer.status == 200


async def test_a_callback_is_answered_once_by_its_own_bot_while_fresh(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str], monkeypatch
) -> None:
    pressed = fake_telegram.make_callback(int(CHAT), "yes")["callback_query"]["id"]
    other_bot = {"token": SECOND_TOKEN}
    with pytest.raises(PermanentError, match="query ID is invalid"):
        await telegram.answer_callback(other_bot, pressed)  # not a press on that bot's message
    with pytest.raises(PermanentError, match="query ID is invalid"):
        await telegram.answer_callback(tg_creds, "4382bfdwdsb323b2d9")  # never issued
    await telegram.answer_callback(tg_creds, pressed)
    with pytest.raises(PermanentError, match="query ID is invalid"):
        await telegram.answer_callback(tg_creds, pressed)  # answered already

    stale = fake_telegram.make_callback(int(CHAT), "late")["callback_query"]["id"]
    monkeypatch.setattr(fake_telegram_module, "CALLBACK_ANSWER_SECONDS", -1.0)  # as if it were old
    with pytest.raises(PermanentError, match="query is too old"):
        await telegram.answer_callback(tg_creds, stale)


async def test_typing_to_a_blocked_user(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    fake_telegram.set_chat_fault(CHAT, Fault.BLOCKED)
    with pytest.raises(RecipientBlockedError):
        await telegram.send_typing(tg_creds, CHAT)


async def test_token_never_reaches_logs(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake_telegram.fail_next(Fault.DROP, after=1)
    # httpx's own level too: once an app in this process configured logging it is WARNING
    with caplog.at_level("DEBUG"), caplog.at_level("DEBUG", logger="httpx"):
        await telegram.send(tg_creds, message())
        with pytest.raises(RetryableError) as info:
            await telegram.send(tg_creds, message())
    assert caplog.records, "httpx should have logged the requests"
    assert all(tg_creds["token"] not in r.getMessage() for r in caplog.records)
    assert any("/bot***/sendMessage" in r.getMessage() for r in caplog.records)
    assert tg_creds["token"] not in str(info.value)
    assert all(tg_creds["token"] not in r.path for r in fake_telegram.requests())


async def test_rendered_markdown_always_passes_telegrams_html_parser(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    rng = random.Random(7)
    pieces = [
        "**",
        "_",
        "`",
        "[",
        "](",
        ")",
        "https://x.ru/?a=1&b=2",
        "<",
        ">",
        "&",
        "&amp;",
        '"',
        "word",
        " ",
        "\n",
        "😀",
        "snake_case",
    ]
    for _ in range(40):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 60)))
        if not text.strip():
            continue
        await telegram.send(tg_creds, message(text, MessageFormat.MARKDOWN))
    assert all(r.status == 200 for r in fake_telegram.requests("sendMessage"))
    assert len(fake_telegram.sent_messages(CHAT)) >= 30


async def test_username_chat_is_not_found(telegram: TelegramAdapter, tg_creds: dict[str, str]) -> None:
    msg = message().model_copy(update={"provider_chat_id": "@somechannel"})
    with pytest.raises(PermanentError, match="chat not found"):
        await telegram.send(tg_creds, msg)
