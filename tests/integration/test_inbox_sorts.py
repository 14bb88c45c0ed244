"""The inbox's sorts (last activity, waiting since, created, priority): the order each gives, cursor
pages through ties, a cursor of one sort refused by another, in the service the cabinet and the
API share, on the inbox page and in the REST API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from domain.enums import ConversationStatus
from infra.models import Conversation, Operator
from services.conversation_list import ConversationFilter, Cursor, Sort, list_conversations
from services.errors import Invalid
from services.visibility import staff
from tests.integration.api_support import assert_problem, client, issue_token
from tests.integration.workspace_support import make_team

HX = {"HX-Request": "true"}
T = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
OPEN, RESOLVED = ConversationStatus.OPEN, ConversationStatus.RESOLVED
MIN = timedelta(minutes=1)

# (activity, created, priority, last_in, last_out, status): ties in every key
SHAPES = [
    (T + 5 * MIN, T, 2, T + 1 * MIN, None, OPEN),  # waiting since +1
    (T + 5 * MIN, T, 2, T + 1 * MIN, None, OPEN),  # same everywhere: the id decides
    (T + 5 * MIN, T + MIN, 0, T + 3 * MIN, T + 4 * MIN, OPEN),  # answered: nothing waiting
    (T + 9 * MIN, T + MIN, 4, T + 2 * MIN, T + 1 * MIN, OPEN),  # waiting since +2
    (T + 1 * MIN, T + 3 * MIN, 2, T + 1 * MIN, None, OPEN),  # waiting since +1
    (T + 7 * MIN, T + 3 * MIN, 0, T + 6 * MIN, None, RESOLVED),  # resolved: nothing waiting
    (T + 5 * MIN, T + 2 * MIN, 4, None, None, OPEN),  # no customer message
]


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


@pytest.fixture
async def shaped(team, clean_db) -> dict[int, tuple]:
    """Ann's seven conversations, shaped as SHAPES says."""
    shapes = {}
    for n, (activity, created, priority, last_in, last_out, status) in enumerate(SHAPES):
        cid = await team.customer_writes(f"Клиент {n}", assignee=team.ann)
        async with clean_db() as db, db.begin():
            await db.execute(
                update(Conversation)
                .where(Conversation.id == cid)
                .values(
                    last_activity_at=activity,
                    created_at=created,
                    priority=priority,
                    last_in_at=last_in,
                    last_out_at=last_out,
                    status=status,
                )
            )
        shapes[cid] = (activity, created, priority, last_in, last_out, status)
    return shapes


def expected(shapes: dict[int, tuple], sort: Sort) -> list[int]:
    def waiting(s: tuple) -> datetime:
        _, _, _, last_in, last_out, status = s
        unanswered = status == OPEN and last_in is not None and (last_out is None or last_in > last_out)
        return last_in if unanswered else datetime(9999, 12, 31, tzinfo=UTC)

    keys = {
        Sort.ACTIVITY: lambda i: (shapes[i][0], i),
        Sort.CREATED: lambda i: (shapes[i][1], i),
        Sort.PRIORITY: lambda i: (shapes[i][2], shapes[i][0], i),
        Sort.WAITING: lambda i: (waiting(shapes[i]), i),
    }
    return sorted(shapes, key=keys[sort], reverse=sort != Sort.WAITING)


@pytest.mark.parametrize("sort", list(Sort))
async def test_each_sort_pages_through_ties_once_each_in_its_order(team, shaped, clean_db, sort):
    async with clean_db() as db:
        ann = await db.get(Operator, team.ann)
        wanted = ConversationFilter(assignee_id=team.ann)
        seen, after = [], None
        while True:
            rows, after = await list_conversations(db, staff(ann), wanted, sort=sort, after=after, limit=2)
            seen += [r.id for r in rows]
            if after is None:
                break
            # the cursor travels as text
            after = Cursor.decode(after.encode(), sort)
    assert seen == expected(shaped, sort)
    if sort == Sort.WAITING:  # the longest waiting first, nothing waiting last
        ids = list(shaped)
        assert seen[:3] == [ids[0], ids[1], ids[4]] and seen[3] == ids[3]


async def test_a_cursor_of_one_sort_is_refused_by_another(team, shaped, clean_db):
    async with clean_db() as db:
        ann = await db.get(Operator, team.ann)
        wanted = ConversationFilter(assignee_id=team.ann)
        _, after = await list_conversations(db, staff(ann), wanted, sort=Sort.PRIORITY, limit=2)
        for other in set(Sort) - {Sort.PRIORITY}:
            with pytest.raises(Invalid):
                Cursor.decode(after.encode(), other)
            with pytest.raises(Invalid):
                await list_conversations(db, staff(ann), wanted, sort=other, after=after, limit=2)


def _rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li id="row-(\d+)"', html)]


async def test_the_inbox_sorts_by_the_select_kept_in_the_url(team, shaped):
    ann = await team.client("ann")
    page = await ann.get("/?status=any")
    assert re.search(r'<label class="list-sort">[^<]*<select name="sort">', page.text)
    assert _rows(page.text) == expected(shaped, Sort.ACTIVITY)
    for sort in Sort:
        listed = await ann.get(f"/?status=any&sort={sort.value}", headers=HX)
        assert listed.status_code == 200 and "<html" not in listed.text
        assert _rows(listed.text) == expected(shaped, sort), sort
    page = await ann.get("/?status=any&sort=waiting")
    assert '<option value="waiting" selected>' in page.text
    # junk is the default sort, never an error
    junk = await ann.get("/?status=any&sort=sideways")
    assert junk.status_code == 200 and _rows(junk.text) == expected(shaped, Sort.ACTIVITY)


async def test_the_inbox_answers_a_cursor_of_another_sort_with_the_first_page(team, shaped):
    first = sorted(shaped, key=lambda i: (shaped[i][1], i), reverse=True)[0]
    alien = Cursor(Sort.CREATED, (shaped[first][1], first)).encode()
    ann = await team.client("ann")
    page = await ann.get(f"/?status=any&sort=priority&cursor={alien}")
    assert page.status_code == 200
    assert "That page of the list is no longer there" in page.text or "Этой страницы списка" in page.text
    assert _rows(page.text) == expected(shaped, Sort.PRIORITY)


async def test_the_api_lists_in_each_sort_and_refuses_unknown_sorts_and_alien_cursors(team, shaped, clean_db):
    secret = await issue_token(clean_db)
    async with client(team.base_url, secret) as api:
        for sort in Sort:
            seen, cursor = [], None
            while True:
                params = {"sort": sort.value, "assignee_id": team.ann, "limit": 3}
                if cursor:
                    params["cursor"] = cursor
                answer = await api.get("/api/v1/conversations", params=params)
                assert answer.status_code == 200, answer.text
                seen += [c["id"] for c in answer.json()["items"]]
                if not (cursor := answer.json()["next_cursor"]):
                    break
            assert seen == expected(shaped, sort), sort
        assert_problem(await api.get("/api/v1/conversations", params={"sort": "sideways"}), 422)
        page = await api.get("/api/v1/conversations", params={"sort": "created", "assignee_id": team.ann, "limit": 2})
        alien = page.json()["next_cursor"]
        refused = await api.get("/api/v1/conversations", params={"sort": "waiting", "cursor": alien})
        assert_problem(refused, 422)
        schema = (await api.get("/openapi.json")).json()
    params = schema["paths"]["/api/v1/conversations"]["get"]["parameters"]
    (sort_param,) = [p for p in params if p["name"] == "sort"]
    assert "waiting" in str(sort_param["schema"])
