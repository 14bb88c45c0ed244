"""What an operator does in an open conversation: reply or note (the composer), canned replies,
the typing indicator, read marks, take over, resolve, reopen, snooze, transfer, priority, labels,
retry a failed reply, "Send to B24".

Every route loads the conversation through `ConversationDep` and checks the form's CSRF token;
the services check the caller's rights on it again (`acting_on`). A plain form post answers 303
back to the conversation with a toast; an HTMX post answers the part it changed, or nothing and a
toast. A refusal (`Invalid`) is a toast that says why (web/problems.py), never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from channels.text import render_html
from domain.enums import Priority
from domain.snooze import SnoozePreset, preset_end
from domain.wording import N_
from infra.files import FileStore
from infra.models import Contact, Inbox, Message
from infra.temporal import WorkflowStarter
from services import bitrix24, canned_replies, conversations, deadletters, labels as label_service, messages, uploads
from services.errors import Forbidden, Invalid
from services.inbox import mark_read
from web.cabinet.conversation import thread_view, workspace
from web.deps import ConversationDep, CsrfChecked, PageDep, SessionDep
from web.templating import PageContext, is_fragment_request, render
from web.toasts import ToastLevel
from web.uploads import composer_limits, read_files

router = APIRouter(prefix="/conversations/{conversation_id}")
changes = APIRouter(prefix="/conversations/{conversation_id}", dependencies=[CsrfChecked])

Text = Annotated[str, Form(max_length=10_000)]
Key = Annotated[str, Form(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


def _done(page: PageContext, conversation_id: int, message: str, level: ToastLevel = ToastLevel.SUCCESS) -> Response:
    """After a change: HTMX gets a toast and nothing to swap; a plain form, the page again."""
    if is_fragment_request(page.request):
        response: Response = Response(status_code=204)
    else:
        response = RedirectResponse(f"/conversations/{conversation_id}", status_code=303)
    page.toast(response, level, message)
    return response


def _refusal(page: PageContext, error: Invalid) -> str:
    return page.gettext(error.message, **error.params)


@changes.post("/messages", name="send_message")
async def send(
    page: PageDep,
    db: SessionDep,
    conversation: ConversationDep,
    idempotency_key: Key,
    text: Text = "",
    note: Annotated[bool, Form()] = False,
    files: Annotated[list[UploadFile], File()] = (),  # type: ignore[assignment]
) -> Response:
    """A reply through the conversation's channel, or a note, with the files picked, pasted or
    dropped in the composer; the draft's key sends it (and its files) once."""
    operator = page.operator
    assert operator is not None
    settings = page.request.app.state.settings
    inbox = await db.get(Inbox, conversation.inbox_id)
    assert inbox is not None
    limits = composer_limits(settings, inbox, note=note)
    stored: list[uploads.StoredUpload] = []
    try:
        if picked := await read_files(files, limits):
            stored = await uploads.store(FileStore.from_settings(settings), uploads.check(picked, limits))
    except uploads.Refused as refused:
        error = page.gettext(refused.detail, **refused.params)
        return await _composer(page, db, conversation, error=error, text=text, note=note, status=refused.status)
    try:
        async with db.begin_nested():  # a refusal undoes only this, and keeps the page's objects loaded
            if note:
                await messages.add_note(
                    db, operator, conversation.id, text, idempotency_key=idempotency_key, attachments=stored
                )
            else:
                await conversations.send_reply(
                    db, operator, conversation.id, text, idempotency_key=idempotency_key, attachments=stored
                )
    except Invalid as error:
        await db.refresh(conversation)
        return await _composer(page, db, conversation, error=_refusal(page, error), text=text, note=note)
    await db.commit()
    if not is_fragment_request(page.request):
        return RedirectResponse(f"/conversations/{conversation.id}", status_code=303)
    return await _composer(page, db, conversation, note=note)


async def _composer(
    page: PageContext,
    db,
    conversation,
    *,
    error: str | None = None,
    text: str = "",
    note: bool = False,
    status: int | None = None,
) -> HTMLResponse:
    """The composer again: empty with a new draft key after a send, or with the text and why it
    was refused (nothing was sent, so a new key is as good)."""
    extra = {"composer_error": error, "composer_text": text, "composer_note": note}
    if is_fragment_request(page.request):
        thread = await thread_view(db, page, conversation, read_only=False)
        return render(page, "cabinet/_composer.html", {"thread": thread} | extra, status_code=status or 200)
    context = await workspace(db, page, conversation) | extra
    return render(page, "cabinet/inbox.html", context, status_code=status or 422)


@changes.post("/preview", response_class=HTMLResponse)
async def preview(page: PageDep, conversation: ConversationDep, text: Text = "") -> HTMLResponse:
    """The draft as the customer's messenger will show it: the channels' own Markdown-lite
    renderer (channels/text.py), so the preview cannot differ from what is sent."""
    return render(page, "cabinet/_preview.html", {"html": render_html(text)})


@router.get("/canned", response_class=HTMLResponse)
async def canned(
    page: PageDep, db: SessionDep, conversation: ConversationDep, q: Annotated[str, Query(max_length=50)] = ""
) -> HTMLResponse:
    """The composer's "/" + shortcut: the operator's branch's and global replies, filled in."""
    operator = page.operator
    assert operator is not None
    name = await db.scalar(select(Contact.display_name).where(Contact.id == conversation.contact_id))
    found = await canned_replies.search(db, operator, q, contact_name=name or "")
    return render(page, "cabinet/_canned.html", {"replies": found})


@changes.post("/read", status_code=204)
async def read(
    page: PageDep, db: SessionDep, conversation: ConversationDep, up_to: Annotated[int, Form(gt=0, lt=2**63)]
) -> Response:
    """The open thread showed messages up to `up_to`: read (for whoever may act in it)."""
    operator = page.operator
    assert operator is not None
    await mark_read(db, operator, conversation, up_to)
    await db.commit()
    return Response(status_code=204)


@changes.post("/take")
async def take(page: PageDep, db: SessionDep, conversation: ConversationDep) -> Response:
    operator = page.operator
    assert operator is not None
    await conversations.take(db, operator, conversation.id)
    await db.commit()
    if not is_fragment_request(page.request):
        return _done(page, conversation.id, page.gettext("The conversation is yours now."))
    context = await workspace(db, page, conversation)
    response = render(page, "cabinet/inbox.html", context, block="thread", oob=["aside", "current_row"])
    page.toast(response, ToastLevel.SUCCESS, page.gettext("The conversation is yours now."))
    return response


@changes.post("/resolve")
async def resolve(page: PageDep, db: SessionDep, conversation: ConversationDep) -> Response:
    operator = page.operator
    assert operator is not None
    await conversations.request_resolve(db, operator, conversation.id)
    await db.commit()
    return _done(page, conversation.id, page.gettext("Resolving the conversation."))


@changes.post("/reopen")
async def reopen(page: PageDep, db: SessionDep, conversation: ConversationDep) -> Response:
    operator = page.operator
    assert operator is not None
    await conversations.reopen(db, operator, conversation.id)
    await db.commit()
    return _done(page, conversation.id, page.gettext("The conversation is open again and yours."))


UNTIL_MESSAGE = "message"


@changes.post("/snooze")
async def snooze(
    page: PageDep,
    db: SessionDep,
    conversation: ConversationDep,
    preset: Annotated[str, Form(max_length=20)] = "",
    until: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Until a preset time (in the operator's timezone), a time they chose (the datetime field,
    read in their timezone), or the customer's next message."""
    operator = page.operator
    assert operator is not None
    zone = page.formats.timezone
    when: datetime | None
    if preset == UNTIL_MESSAGE:
        when = None
    elif preset in {p.value for p in SnoozePreset}:
        when = preset_end(SnoozePreset(preset), datetime.now(UTC), zone)
    else:
        try:
            when = datetime.fromisoformat(until).replace(tzinfo=zone)
        except ValueError:
            raise Invalid(N_("Choose when the snooze ends.")) from None
    await conversations.snooze(db, operator, conversation.id, when)
    await db.commit()
    return _done(page, conversation.id, page.gettext("Snoozed."))


@changes.post("/transfer")
async def transfer(
    page: PageDep,
    db: SessionDep,
    conversation: ConversationDep,
    to_operator: Annotated[str, Form(max_length=20)] = "",
    to_branch: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    operator = page.operator
    assert operator is not None
    await conversations.request_transfer(
        db, operator, conversation.id, to_operator_id=_optional_id(to_operator), to_branch_id=_optional_id(to_branch)
    )
    await db.commit()
    return _done(page, conversation.id, page.gettext("Transferring the conversation."))


def _optional_id(value: str) -> int | None:
    """A select's value: empty is none; anything that is not an id is refused like a stale one."""
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 2**63:
        raise Invalid("Choose either an operator or a branch to transfer to.")
    return int(value)


@changes.post("/priority")
async def priority(
    page: PageDep, db: SessionDep, conversation: ConversationDep, priority: Annotated[Priority, Form()]
) -> Response:
    operator = page.operator
    assert operator is not None
    await conversations.set_priority(db, operator, conversation.id, priority)
    await db.commit()
    return _done(page, conversation.id, page.gettext("Priority changed."))


@changes.post("/labels")
async def set_labels(
    page: PageDep,
    db: SessionDep,
    conversation: ConversationDep,
    label: Annotated[list[int], Form()] = (),  # type: ignore[assignment]
) -> Response:
    operator = page.operator
    assert operator is not None
    await label_service.set_conversation_labels(db, operator, conversation.id, label)
    await db.commit()
    return _done(page, conversation.id, page.gettext("Labels saved."))


@changes.post("/messages/{message_id}/retry")
async def retry(page: PageDep, db: SessionDep, conversation: ConversationDep, message_id: int) -> Response:
    """A failed reply sent again (the dead-letter list's retry; supervisors)."""
    operator = page.operator
    assert operator is not None
    if (
        not 0 < message_id < 2**63
        or await db.scalar(select(Message.conversation_id).where(Message.id == message_id)) != conversation.id
    ):
        raise Forbidden()
    await deadletters.retry_dead_letter(db, operator, message_id)
    await db.commit()
    return _done(page, conversation.id, page.gettext("Sending again."))


@changes.post("/bitrix24")
async def send_to_bitrix24(page: PageDep, db: SessionDep, conversation: ConversationDep) -> Response:
    operator = page.operator
    assert operator is not None
    conversation = await conversations.acting_on(db, operator, conversation.id)
    task, start = await bitrix24.request_task(db, conversation, operator_id=operator.id)
    await db.commit()
    if start:
        settings = page.request.app.state.settings
        starter = WorkflowStarter(await page.request.app.state.temporal.client(), settings.temporal_task_queue)
        await starter.start_bitrix24_task(conversation.id, task.purpose)
    return _done(page, conversation.id, page.gettext("Sending to B24…"))
