"""Files from the composer over real HTTP: a reply with a picked, pasted or dropped image and a
PDF is one outgoing message whose files the fake Telegram receives once as sendPhoto and
sendDocument (multipart, checked as the real API checks it), the fake MAX as uploads and a
website visitor in the widget's chat; the thread shows the image through the authorised route.
Refused with a readable 4xx, and nothing stored or queued: another operator's conversation
(404), no CSRF token (403), a file that is not an image or a PDF (415), one over the inbox's
size or count limit (413). A note keeps its files for staff and is never queued."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import pytest
from sqlalchemy import func, select, update

from domain.enums import DeliveryStatus, OperatorRole
from infra.files import FileStore
from infra.models import Attachment, Conversation, Inbox, Message, Operator, OutboxEvent
from services.ingest import ingest
from tests.integration.conftest import wait_until
from tests.integration.settings_support import add_staff, sign_in
from tests.integration.widget_support import Visitor, new_client_id, widget_inbox
from tests.integration.workspace_support import make_team

HX = {"HX-Request": "true"}
# a 1x1 PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201e2ff21bc0000000049454e44ae426082"
)


def _key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def _pdf() -> bytes:
    return b"%PDF-1.4\n" + os.urandom(64)  # new bytes per test: the store is the session's


def _stored(app_settings, content: bytes) -> bool:
    return FileStore.from_settings(app_settings).path_for(hashlib.sha256(content).hexdigest()).exists()


async def _signed_in_assignee(world, base_url: str, conversation_id: int):
    """A single online operator: the conversation's workflow assigns it to them."""
    op = await world.operator()

    async def assigned() -> bool:
        async with world.factory() as db:
            return await db.scalar(select(Conversation.assignee_id).where(Conversation.id == conversation_id)) == op

    await wait_until(assigned)
    async with world.factory() as db:
        email = await db.scalar(select(Operator.email).where(Operator.id == op))
    return await sign_in(base_url, email, "operator-password")


async def _sent_reply(world, conversation_id: int) -> Message:
    async def sent() -> Message | None:
        async with world.factory() as db:
            found = await db.scalar(
                select(Message).where(
                    Message.conversation_id == conversation_id,
                    Message.is_note.is_(False),
                    Message.delivery_status == DeliveryStatus.SENT,
                )
            )
            return found

    await wait_until(sent)
    return await sent()


async def test_a_reply_with_an_image_and_a_pdf_reaches_telegram_once(
    world, engine_stack, live_api, app_settings, fake_telegram
):
    conversation_id = (await ingest(world.factory, world.event("900310", "пришлите счёт"))).conversation_id
    operator = await _signed_in_assignee(world, live_api.url, conversation_id)
    page = await operator.get(f"/conversations/{conversation_id}")
    assert 'name="files"' in page.text and 'enctype="multipart/form-data"' in page.text
    pdf = _pdf()
    form = {"text": "Вот **счёт**", "idempotency_key": _key(page.text)}
    files = [("files", ("screen.png", PNG, "image/png")), ("files", ("счёт.pdf", pdf, "application/pdf"))]
    # a double click: both posts carry the draft's key; the second finds the first message
    first, second = await asyncio.gather(
        operator.post(f"/conversations/{conversation_id}/messages", form, files=files, headers=HX),
        operator.post(f"/conversations/{conversation_id}/messages", form, files=files, headers=HX),
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    message = await _sent_reply(world, conversation_id)
    sent = fake_telegram.sent_messages("900310")
    assert [(s.method, s.text) for s in sent] == [("sendPhoto", "Вот <b>счёт</b>"), ("sendDocument", None)]
    assert [(f.field, f.filename, f.content) for s in sent for f in s.files] == [
        ("photo", "screen.png", PNG),
        ("document", "счёт.pdf", pdf),
    ]
    async with world.factory() as db:
        replies = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_id == conversation_id, Message.direction == "out")
        )
        attachments = (
            await db.scalars(select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.id))
        ).all()
    assert replies == 1
    assert [(a.kind, a.mime_type, a.size) for a in attachments] == [
        ("photo", "image/png", len(PNG)),
        ("document", "application/pdf", len(pdf)),
    ]
    # the thread shows the image as a thumbnail through the conversation's own route
    thread = await operator.get(f"/conversations/{conversation_id}")
    image_url = f"/conversations/{conversation_id}/attachments/{attachments[0].id}"
    assert f'<img src="{image_url}"' in thread.text
    image = await operator.get(image_url)
    assert image.status_code == 200 and image.content == PNG and image.headers["content-type"] == "image/png"


async def test_files_alone_reach_max_as_uploads(world, engine_stack, live_api, fake_max, fake_telegram):
    conversation_id = await world.max_customer_writes("525252", "86420", "пришлите фото")
    operator = await _signed_in_assignee(world, live_api.url, conversation_id)
    page = await operator.get(f"/conversations/{conversation_id}")
    pdf = _pdf()
    answer = await operator.post(
        f"/conversations/{conversation_id}/messages",
        {"text": "", "idempotency_key": _key(page.text)},
        files=[("files", ("photo.png", PNG, "image/png")), ("files", ("doc.pdf", pdf, "application/pdf"))],
    )
    assert answer.status_code == 303
    await _sent_reply(world, conversation_id)
    sent = fake_max.sent_messages("86420")
    assert [[f.content for f in s.files] for s in sent] == [[PNG], [pdf]]
    assert fake_telegram.requests(chat_id="86420") == []


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


async def _counts(clean_db) -> tuple[int, int, int]:
    async with clean_db() as db:
        return (
            await db.scalar(select(func.count()).select_from(Message)),
            await db.scalar(select(func.count()).select_from(OutboxEvent)),
            await db.scalar(select(func.count()).select_from(Attachment)),
        )


async def test_uploads_outside_ones_rights_or_without_the_token_store_nothing(team, clean_db, app_settings):
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    before = await _counts(clean_db)
    pdf = _pdf()
    files = [("files", ("doc.pdf", pdf, "application/pdf"))]
    form = {"text": "", "idempotency_key": "k" * 20}
    for who in ("ann", "carl"):  # the same branch but not hers; another branch
        client = await team.client(who)
        assert (await client.post(f"/conversations/{bobs}/messages", form, files=files, headers=HX)).status_code == 404
        for note in ("", "1"):
            guessed = await client.post(
                "/conversations/4611686018427387904/messages", form | {"note": note}, files=files
            )
            assert guessed.status_code == 404
    bob = await team.client("bob")
    no_token = await bob.http.post(f"/conversations/{bobs}/messages", data=form, files=files, headers=HX)
    assert no_token.status_code == 403
    assert await _counts(clean_db) == before
    assert not _stored(app_settings, pdf)
    # the same post by the assignee with the token: stored, one message with its file
    page = await bob.get(f"/conversations/{bobs}")
    mine = await bob.post(f"/conversations/{bobs}/messages", form | {"idempotency_key": _key(page.text)}, files=files)
    assert mine.status_code == 303
    messages, _, attachments = await _counts(clean_db)
    assert (messages, attachments) == (before[0] + 1, before[2] + 1)
    assert _stored(app_settings, pdf)


async def test_junk_oversized_or_too_many_files_are_refused_readably_with_nothing_kept(team, clean_db, app_settings):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    async with clean_db() as db, db.begin():
        await db.execute(
            update(Inbox)
            .where(Inbox.id == team.inbox_id)
            .values(settings={"attachment_max_bytes": 2**20, "attachment_max_count": 2})
        )
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    assert f'data-max-bytes="{2**20}"' in page.text and 'data-max-count="2"' in page.text
    before = await _counts(clean_db)
    url = f"/conversations/{mine}/messages"
    form = {"text": "Смотрите", "idempotency_key": _key(page.text)}
    small = [_pdf() for _ in range(3)]
    junk = b"MZ\x90\x00 an executable " + os.urandom(32)
    big = b"%PDF-1.4\n" + os.urandom(2**20)

    exe = await ann.post(url, form, files=[("files", ("setup.pdf", junk, "application/pdf"))])
    assert exe.status_code == 415 and "setup.pdf не изображение (PNG, JPEG, GIF, WebP) и не PDF" in exe.text
    assert 'id="composer-error"' in exe.text and "Смотрите" in exe.text  # the text is kept
    large = await ann.post(url, form, files=[("files", ("big.pdf", big, "application/pdf"))], headers=HX)
    assert large.status_code == 413 and "big.pdf больше 1 МБ" in large.text
    many = await ann.post(url, form, files=[("files", (f"{i}.pdf", c, "application/pdf")) for i, c in enumerate(small)])
    assert many.status_code == 413 and "Файлов за раз: не больше 2" in many.text
    assert await _counts(clean_db) == before
    assert not any(_stored(app_settings, content) for content in (junk, big, *small))


async def test_a_note_keeps_its_files_for_staff_and_queues_nothing(team, clean_db, app_settings):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{mine}")
    _, outbox_before, _ = await _counts(clean_db)
    answer = await ann.post(
        f"/conversations/{mine}/messages",
        {"text": "", "note": "1", "idempotency_key": _key(page.text)},
        files=[("files", ("склад.png", PNG, "image/png"))],
    )
    assert answer.status_code == 303
    async with clean_db() as db:
        note = await db.scalar(select(Message).where(Message.conversation_id == mine, Message.is_note.is_(True)))
        names = (await db.scalars(select(Attachment.file_name).where(Attachment.message_id == note.id))).all()
    assert names == ["склад.png"] and note.delivery_status == DeliveryStatus.RECEIVED
    assert (await _counts(clean_db))[1] == outbox_before
    thread = await ann.get(f"/conversations/{mine}")
    assert re.search(rf'<li id="message-{note.id}"[^>]*data-note="true"', thread.text)


async def test_a_widget_visitor_gets_the_replys_files(clean_db, live_api):
    inbox_id = await widget_inbox(clean_db)
    visitor = Visitor(live_api.url, inbox_id)
    assert (await visitor.start()).status_code == 201
    assert (await visitor.say("Пришлите фото товара")).status_code == 201
    conversation_id = (await visitor.chat())["conversation"]["id"]
    email = f"{new_client_id()}@example.com"
    operator_id = await add_staff(clean_db, OperatorRole.OPERATOR, email, "Вика")
    async with clean_db() as db, db.begin():
        branch_id = await db.scalar(select(Operator.branch_id).where(Operator.id == operator_id))
        await db.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(assignee_id=operator_id, branch_id=branch_id)
        )
    operator = await sign_in(live_api.url, email)
    page = await operator.get(f"/conversations/{conversation_id}")
    answer = await operator.post(
        f"/conversations/{conversation_id}/messages",
        {"text": "Вот оно", "idempotency_key": _key(page.text)},
        files=[("files", ("товар.png", PNG, "image/png"))],
    )
    assert answer.status_code == 303
    (reply,) = [m for m in (await visitor.chat())["messages"] if not m["mine"]]
    (shown,) = reply["attachments"]
    assert (reply["html"], shown["name"], shown["type"], shown["size"]) == (
        "Вот оно",
        "товар.png",
        "image/png",
        len(PNG),
    )
    served = await visitor.call("GET", f"/files/{shown['id']}")
    assert served.status_code == 200 and served.content == PNG


async def test_the_paperclip_and_the_emoji_panel_speak_the_operators_language(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    russian = (await ann.get(f"/conversations/{mine}")).text
    assert 'aria-label="Широкая улыбка"' in russian and "Прикрепить файлы" in russian
    async with clean_db() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == team.ann).values(locale="en"))
    english = (await ann.get(f"/conversations/{mine}")).text
    assert 'aria-label="Grinning face"' in english and "Attach files" in english
    assert 'data-remove="Remove {name}"' in english
