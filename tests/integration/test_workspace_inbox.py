"""The inbox and the thread over real HTTP: tabs, filters, search, cursor pages, one row for live
updates, the thread's pages, read marks, the supervisor's invisible view, attachments through the
conversation's own route, and every id outside the caller's rights answered as "not found"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from infra.files import FileStore
from infra.models import Attachment, AuditEvent, Conversation, Label, Message, ReadState
from tests.integration.workspace_support import make_team

HX = {"HX-Request": "true"}


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="row-(\d+)"', html)]


async def test_tabs_show_mine_the_branch_pool_and_for_supervisors_all(team):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    pool = await team.customer_writes("Пётр Кузнецов", age=timedelta(minutes=5))
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    elsewhere = await team.customer_writes("Сергей Попов", branch_id=team.other_branch_id)
    ann = await team.client("ann")
    page = await ann.get("/")
    assert page.status_code == 200
    assert _rows(page.text) == [mine]
    assert "<title>(1) Диалоги — Switchboard</title>" in page.text  # unread: the customer wrote
    assert _rows((await ann.get("/?tab=unassigned")).text) == [pool]
    # an operator asking for "all" gets their own list: the tab is not theirs
    assert _rows((await ann.get("/?tab=all")).text) == [mine]
    assert 'data-tab="all"' not in page.text
    boss = await team.client("boss")
    everything = await boss.get("/?tab=all")
    assert set(_rows(everything.text)) == {mine, pool, bobs, elsewhere}
    assert re.search(r'data-count="all">4<', everything.text)
    # an HTMX request for the list gets the rows alone
    fragment = await boss.get("/?tab=all", headers=HX)
    assert fragment.text.lstrip().startswith('<li id="row-') and "<html" not in fragment.text


async def test_filters_and_search_by_name_username_phone_and_message_text(team, clean_db):
    first = await team.customer_writes("Ирина Смирнова", "где мой заказ 4512?", assignee=team.ann, username="irina_s")
    second = await team.customer_writes("Анна Петрова", "нужен аккумулятор", assignee=team.ann, age=timedelta(hours=1))
    async with clean_db() as db, db.begin():
        label = Label(name="VIP", colour="#aa0000")
        db.add(label)
        await db.flush()
        label_id = label.id
        contact_id = await db.scalar(select(Conversation.contact_id).where(Conversation.id == second))
        await db.execute(Conversation.__table__.update().where(Conversation.id == first).values(last_out_at=func.now()))
        from infra.models import Contact, ConversationLabel

        db.add(ConversationLabel(conversation_id=second, label_id=label_id))
        await db.execute(Contact.__table__.update().where(Contact.id == contact_id).values(phone="+7 912 555-01-02"))
    ann = await team.client("ann")
    assert _rows((await ann.get("/?q=смирн")).text) == [first]
    assert _rows((await ann.get("/?q=@irina")).text) == [first]
    assert _rows((await ann.get("/?q=аккумул")).text) == [second]
    assert _rows((await ann.get("/?q=9125550102")).text) == [second]
    assert _rows((await ann.get("/?q=100%25")).text) == []  # LIKE's wildcards are literal
    assert _rows((await ann.get(f"/?label={label_id}")).text) == [second]
    assert _rows((await ann.get("/?unanswered=1")).text) == [second]  # first was answered
    assert _rows((await ann.get("/?channel=max")).text) == []
    assert _rows((await ann.get("/?status=resolved")).text) == []
    # junk in any parameter is ignored, never a 500
    junk = await ann.get("/?tab=x&status=y&channel=z&inbox=-1&label=abc&unanswered=maybe&cursor=%%%&q=" + "x" * 500)
    assert junk.status_code == 200
    assert "That page of the list" in junk.text or "Этой страницы списка" in junk.text


async def test_cursor_pages_cover_every_row_once(team):
    ids = [await team.customer_writes(f"Клиент {n}", assignee=team.ann, age=timedelta(minutes=n)) for n in range(55)]
    ann = await team.client("ann")
    first = await ann.get("/")
    seen = _rows(first.text)
    assert len(seen) == 50
    more = re.search(r'<li class="rows-more"><a href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert "cursor=" in more
    second = await ann.get(more, headers=HX)
    seen += _rows(second.text)
    assert seen == ids and "rows-more" not in second.text


async def test_one_row_for_live_updates_follows_the_lists_filters(team):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    row = await ann.get(f"/conversations/{mine}/row", headers=HX)
    assert row.status_code == 200 and f'id="row-{mine}"' in row.text and "<html" not in row.text
    # not in the pool tab: the page removes its row
    assert (await ann.get(f"/conversations/{mine}/row?tab=unassigned", headers=HX)).status_code == 204
    bob = await team.client("bob")
    assert (await bob.get(f"/conversations/{mine}/row", headers=HX)).status_code == 404


async def test_opening_a_thread_reads_it_and_a_supervisor_watching_reads_nothing(team, clean_db):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    boss = await team.client("boss")
    watched = await boss.get(f"/conversations/{mine}")
    assert watched.status_code == 200
    assert "Take over" in watched.text or "Взять в работу" in watched.text
    assert 'id="composer"' not in watched.text
    async with clean_db() as db:
        assert await db.scalar(select(func.count()).select_from(ReadState)) == 0
        conversation = await db.get(Conversation, mine)
        assert conversation.opened_at is None
        assert (
            await db.scalar(
                select(AuditEvent.action).where(AuditEvent.conversation_id == mine).order_by(AuditEvent.id.desc())
            )
            == "conversation.watched"
        )
    ann = await team.client("ann")
    assert "(1) Диалоги" in (await ann.get("/")).text
    page = await ann.get(f"/conversations/{mine}")
    assert page.status_code == 200
    assert 'id="composer"' in page.text and "Ответ уйдёт в Telegram через бот «Магазин»" in page.text
    assert re.search(r'<li id="message-\d+" class="message"', page.text)
    assert "<title>Диалоги — Switchboard</title>" in page.text  # read now
    async with clean_db() as db:
        assert (await db.get(Conversation, mine)).opened_at is not None
        assert (
            await db.scalar(select(func.count()).select_from(ReadState).where(ReadState.operator_id == team.ann)) == 1
        )
    # HTMX (a row clicked): the thread, and out of band the contact panel, its row and the badge
    fragment = await ann.get(f"/conversations/{mine}", headers=HX)
    assert fragment.text.lstrip().startswith('<section class="pane pane-thread"')
    assert (
        'id="contact-pane"' in fragment.text
        and f'id="row-{mine}"' in fragment.text
        and 'id="nav-unread"' in fragment.text
    )


async def test_thread_pages_back_through_the_contacts_history(team, clean_db):
    conversation = await team.customer_writes("Ирина Смирнова", "первое", assignee=team.ann)
    for n in range(60):
        await team.customer_writes("Ирина Смирнова", f"сообщение {n}", assignee=team.ann)
    ann = await team.client("ann")
    page = await ann.get(f"/conversations/{conversation}")
    shown = [int(i) for i in re.findall(r'<li id="message-(\d+)"', page.text)]
    assert len(shown) == 50 and shown == sorted(shown)
    older = re.search(r'hx-get="(/conversations/\d+/messages\?before=\d+)"', page.text).group(1)
    earlier = await ann.get(older, headers=HX)
    more = [int(i) for i in re.findall(r'<li id="message-(\d+)"', earlier.text)]
    assert len(more) == 11 and max(more) < min(shown) and "первое" in earlier.text
    assert "Earlier messages" not in earlier.text and "Более ранние" not in earlier.text
    one = await ann.get(f"/conversations/{conversation}/messages/{shown[-1]}", headers=HX)
    assert one.text.lstrip().startswith(f'<li id="message-{shown[-1]}"')
    assert (await ann.get(f"/conversations/{conversation}/messages?before=abc")).status_code == 422


async def test_attachments_only_through_their_own_conversation(team, clean_db, app_settings):
    mine = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    other = await team.customer_writes("Пётр Кузнецов", assignee=team.bob)
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 64
    stored = FileStore.from_settings(app_settings).put(png)
    async with clean_db() as db, db.begin():
        message_id = await db.scalar(select(Message.id).where(Message.conversation_id == mine))
        picture = Attachment(
            message_id=message_id,
            kind="photo",
            file_name="фото.png",
            mime_type="image/png",
            size=len(png),
            sha256=stored.sha256,
            stored_at=func.now(),
        )
        db.add(picture)
        await db.flush()
        picture_id = picture.id
    ann = await team.client("ann")
    image = await ann.get(f"/conversations/{mine}/attachments/{picture_id}")
    assert image.status_code == 200 and image.content == png and image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline")
    download = await ann.get(f"/conversations/{mine}/attachments/{picture_id}?download=true")
    assert (
        download.headers["content-disposition"].startswith("attachment")
        and download.headers["content-type"] == "application/octet-stream"
    )
    # the right file through the wrong conversation, or someone else's conversation: not found
    assert (await ann.get(f"/conversations/{other}/attachments/{picture_id}")).status_code == 404
    bob = await team.client("bob")
    assert (await bob.get(f"/conversations/{mine}/attachments/{picture_id}")).status_code == 404
    assert (await bob.get(f"/conversations/{other}/attachments/{picture_id}")).status_code == 404
    assert (await ann.get(f"/conversations/{mine}/attachments/99999999999999999999")).status_code in (404, 422)


@pytest.mark.parametrize(
    "path",
    [
        "/conversations/{id}",
        "/conversations/{id}/row",
        "/conversations/{id}/messages?before=9",
        "/conversations/{id}/messages/1",
        "/conversations/{id}/attachments/1",
        "/conversations/{id}/canned?q=a",
    ],
)
async def test_reading_a_conversation_outside_ones_rights_is_not_found(team, path):
    bobs = await team.customer_writes("Ольга Иванова", assignee=team.bob)
    carl = await team.client("carl")  # another branch
    ann = await team.client("ann")  # same branch, not hers, not in the pool
    for client in (carl, ann):
        answer = await client.get(path.format(id=bobs))
        assert answer.status_code == 404, (path, answer.status_code)
    assert (await ann.get(path.format(id=2**70))).status_code in (404, 422)
