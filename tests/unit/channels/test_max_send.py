"""MaxAdapter.send, uploads and friends against the fake MAX API."""

from __future__ import annotations

import itertools

import httpx
import pytest

from channels.max import MaxAdapter
from channels.max.errors import AttachmentNotReady
from domain.contracts import (
    DeliveryError,
    OutboundAttachment,
    OutboundMessage,
    PermanentError,
    RateLimitedError,
    RecipientBlockedError,
    RetryableError,
)
from domain.enums import ChannelKind, ErrorClass, MessageFormat
from tests.fakes import Fault
from tests.fakes.max import SECOND_TOKEN, FakeMax

CHAT = "182182182"


def message(
    text: str = "hello", fmt: MessageFormat = MessageFormat.PLAIN, *atts: OutboundAttachment
) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=2,
        inbox_id=3,
        channel=ChannelKind.MAX,
        provider_chat_id=CHAT,
        text=text,
        format=fmt,
        attachments=list(atts),
    )


def attachment(attachment_id: int, name: str, mime: str) -> OutboundAttachment:
    return OutboundAttachment(attachment_id=attachment_id, file_name=name, mime_type=mime, size=3, sha256="0" * 64)


async def test_text_with_bare_token_header(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    result = await max_adapter.send(max_creds, message("**Готово** <ok> & _всё_", MessageFormat.MARKDOWN))
    [sent] = fake_max.sent_messages(CHAT)
    assert result.provider_message_ids == [sent.message_id]
    assert sent.message_id.startswith("mid.")
    assert (sent.text, sent.format) == ("<b>Готово</b> &lt;ok&gt; &amp; <i>всё</i>", "html")
    [request] = fake_max.requests("messages")
    assert request.authorization == max_creds["token"]  # no "Bearer"
    assert request.params["chat_id"] == CHAT


async def test_plain_text_has_no_format(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    await max_adapter.send(max_creds, message("**as typed**"))
    [sent] = fake_max.sent_messages(CHAT)
    assert (sent.text, sent.format) == ("**as typed**", None)


async def test_long_text_splits_at_4000(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    result = await max_adapter.send(max_creds, message("ы" * 4000))
    assert len(result.provider_message_ids) == 1
    result = await max_adapter.send(max_creds, message(("слово " * 1400).strip()))  # 8399 chars
    assert len(result.provider_message_ids) == 3
    assert next(len(m.text or "") for m in fake_max.sent_messages(CHAT)) == 4000
    assert all(len(m.text or "") <= 4000 for m in fake_max.sent_messages(CHAT))
    assert len(set(result.provider_message_ids)) == 3


@pytest.mark.parametrize(
    ("fault", "error", "error_class"),
    [
        (Fault.SERVER_ERROR, RetryableError, ErrorClass.RETRYABLE),
        (Fault.BAD_GATEWAY, RetryableError, ErrorClass.RETRYABLE),
        (Fault.UNAVAILABLE, RetryableError, ErrorClass.RETRYABLE),
        (Fault.DROP, RetryableError, ErrorClass.RETRYABLE),
        (Fault.BLOCKED, RecipientBlockedError, ErrorClass.PERMANENT),
        (Fault.CHAT_NOT_FOUND, PermanentError, ErrorClass.PERMANENT),
    ],
)
async def test_faults_become_typed_errors(
    max_adapter: MaxAdapter,
    fake_max: FakeMax,
    max_creds: dict[str, str],
    fault: Fault,
    error: type[DeliveryError],
    error_class: ErrorClass,
) -> None:
    fake_max.fail_next(fault, method="messages")
    with pytest.raises(error) as info:
        await max_adapter.send(max_creds, message())
    assert type(info.value) is error
    assert info.value.error_class == error_class
    assert fake_max.sent_messages(CHAT) == []


async def test_blocked_dialog(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    fake_max.set_chat_fault(CHAT, Fault.BLOCKED)
    with pytest.raises(RecipientBlockedError) as info:
        await max_adapter.send(max_creds, message())
    assert info.value.provider_code == "chat.denied"
    assert "error.dialog.suspended" in info.value.reason


async def test_rate_limit_carries_retry_after(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    fake_max.fail_next(Fault.RATE_LIMIT, retry_after=5)
    with pytest.raises(RateLimitedError) as info:
        await max_adapter.send(max_creds, message())
    assert info.value.retry_after == 5.0


async def test_bad_token_is_permanent(max_adapter: MaxAdapter) -> None:
    with pytest.raises(PermanentError) as info:
        await max_adapter.send({"token": "nope"}, message())
    assert info.value.provider_code == "verify.token"


async def test_image_upload_flow(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"1" * 64
    result = await max_adapter.send(
        max_creds, message("Фото", MessageFormat.PLAIN, attachment(4, "p.jpg", "image/jpeg")), {4: jpeg}
    )
    assert [(r.http_method, r.method, r.status) for r in fake_max.requests()] == [
        ("POST", "uploads", 200),
        ("POST", "upload", 200),
        ("POST", "messages", 200),
    ]
    assert fake_max.requests("uploads")[0].params["type"] == "image"
    [upload] = fake_max.requests("upload")
    assert upload.authorization is None  # the CDN never sees our token
    assert upload.files["data"].content == jpeg
    [sent] = fake_max.sent_messages(CHAT)
    assert result.provider_message_ids == [sent.message_id]
    assert sent.text == "Фото"
    assert [a["type"] for a in sent.attachments] == ["image"]
    assert [f.content for f in sent.files] == [jpeg]


@pytest.mark.parametrize(
    ("mime", "kind"),
    [("application/pdf", "file"), ("video/mp4", "video"), ("audio/mpeg", "audio"), ("image/svg+xml", "file")],
)
async def test_upload_types(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str], mime: str, kind: str
) -> None:
    await max_adapter.send(max_creds, message("", MessageFormat.PLAIN, attachment(1, "f", mime)), {1: b"data"})
    assert fake_max.requests("uploads")[0].params["type"] == kind
    [sent] = fake_max.sent_messages(CHAT)
    assert [a["type"] for a in sent.attachments] == [kind]
    assert sent.text is None


async def test_attachment_not_ready_is_retried_with_growing_delays(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    fake_max.attachment_processing_attempts = 2
    await max_adapter.send(
        max_creds, message("", MessageFormat.PLAIN, attachment(1, "v.mp4", "video/mp4")), {1: b"mp4"}
    )
    assert [r.status for r in fake_max.requests("messages")] == [400, 400, 200]
    attempts = fake_max.requests("messages")
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[1] > gaps[0] >= 0.01
    assert len(fake_max.sent_messages(CHAT)) == 1


async def test_attachment_never_ready_is_retryable(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    fake_max.fail_next(Fault.NOT_READY, count=None, method="messages")
    with pytest.raises(AttachmentNotReady) as info:
        await max_adapter.send(
            max_creds, message("", MessageFormat.PLAIN, attachment(1, "a.pdf", "application/pdf")), {1: b"%PDF"}
        )
    assert isinstance(info.value, RetryableError)
    assert len(fake_max.requests("messages")) == len(max_adapter.not_ready_delays) + 1


async def test_upload_host_failure_is_retryable(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    fake_max.fail_next(Fault.UNAVAILABLE, method="upload")
    with pytest.raises(RetryableError):
        await max_adapter.send(
            max_creds, message("", MessageFormat.PLAIN, attachment(1, "a.pdf", "application/pdf")), {1: b"%PDF"}
        )
    assert fake_max.requests("messages") == []


async def test_text_then_attachments_resume(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    msg = message("t" * 5000, MessageFormat.PLAIN, attachment(1, "a.pdf", "application/pdf"))
    fake_max.fail_next(Fault.SERVER_ERROR, method="messages", after=2)
    with pytest.raises(RetryableError) as info:
        await max_adapter.send(max_creds, msg, {1: b"%PDF"})
    assert len(info.value.sent_message_ids) == 2
    resumed = await max_adapter.send(max_creds, msg, {1: b"%PDF"}, skip_parts=2)
    assert len(resumed.provider_message_ids) == 1
    sent = fake_max.sent_messages(CHAT)
    assert [bool(m.attachments) for m in sent] == [False, False, True]
    assert [len(m.text or "") for m in sent] == [4000, 1000, 0]


async def test_typing_and_callback_answer(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    await max_adapter.send_typing(max_creds, CHAT)
    first, second = (fake_max.make_callback(int(CHAT), 7, "rate:5")["callback"]["callback_id"] for _ in range(2))
    await max_adapter.answer_callback(max_creds, first, "Принято")
    await max_adapter.answer_callback(max_creds, second)
    [typing] = fake_max.requests("chats")
    assert (typing.path, typing.params, typing.status) == (f"/chats/{CHAT}/actions", {"action": "typing_on"}, 200)
    answers = fake_max.requests("answers")
    assert [(a.params, a.status) for a in answers] == [
        ({"callback_id": first, "notification": "Принято"}, 200),
        ({"callback_id": second}, 200),
    ]


async def test_a_callback_is_answered_once_by_its_own_bot(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    pressed = fake_max.make_callback(int(CHAT), 7, "yes")["callback"]["callback_id"]
    with pytest.raises(PermanentError, match="not found"):
        await max_adapter.answer_callback({"token": SECOND_TOKEN}, pressed)
    with pytest.raises(PermanentError, match="not found"):
        await max_adapter.answer_callback(max_creds, "never-issued")
    await max_adapter.answer_callback(max_creds, pressed)
    with pytest.raises(PermanentError, match="not found"):
        await max_adapter.answer_callback(max_creds, pressed)


async def test_a_bot_cannot_write_into_another_bots_dialog(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    fake_max.make_message(int(CHAT), 7, "hi", bot=SECOND_TOKEN)  # the user's dialog with the second bot
    with pytest.raises(PermanentError, match="not found"):
        await max_adapter.send(max_creds, message("wrong bot"))
    await max_adapter.send({"token": SECOND_TOKEN}, message("right bot"))
    assert [(m.text, m.bot) for m in fake_max.sent_messages(CHAT)] == [("right bot", SECOND_TOKEN)]


async def test_timeout_is_retryable(fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    fake_max.fail_next(Fault.SLOW, delay=0.5)
    async with httpx.AsyncClient(timeout=0.1) as http:
        with pytest.raises(RetryableError, match="timeout"):
            await MaxAdapter(http, fake_max.base_url).send(max_creds, message())
