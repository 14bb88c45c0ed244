"""Deactivating an operator: their sessions end at once, their open conversations go back to the
branch's pool, and each conversation's workflow, told through the outbox, hands it to the first
free operator of the branch (or leaves it waiting in the pool when there is none)."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from domain.conversation import STATE_QUERY, ConversationState
from domain.enums import OperatorRole, OperatorStatus
from domain.ids import conversation_workflow_id
from infra.models import AuditEvent, Conversation, Operator, WebSession
from infra.security import token_digest
from services import accounts, operators
from services.ingest import ingest
from tests.integration.conftest import wait_until


async def _assignees(factory, ids: list[int]) -> list[int | None]:
    async with factory() as db:
        rows = await db.execute(select(Conversation.id, Conversation.assignee_id).where(Conversation.id.in_(ids)))
        by_id = dict(rows.all())
    return [by_id[i] for i in ids]


async def test_deactivating_an_operator_returns_their_conversations_and_they_are_reassigned(world, engine_stack):
    factory = world.factory
    anna = await world.operator()  # the only one online: every new conversation is hers
    ids = [(await ingest(factory, world.event(f"deact-{n}"))).conversation_id for n in range(3)]

    async def all_annas() -> bool:
        return await _assignees(factory, ids) == [anna] * 3

    await wait_until(all_annas)
    boris = await world.operator()  # online now, with nothing yet
    async with factory() as db, db.begin():
        admin = Operator(email="root@example.com", display_name="Root", password_hash="-", role=OperatorRole.ADMIN)
        db.add(admin)
        expires = datetime.now(UTC) + timedelta(days=1)
        db.add_all(
            WebSession(token_hash=token_digest(f"anna-{n}"), operator_id=anna, csrf_token="t", expires_at=expires)
            for n in range(2)
        )

    async with factory() as db, db.begin():
        admin = await db.scalar(select(Operator).where(Operator.email == "root@example.com"))
        returned = await accounts.deactivate(db, admin, anna)
    assert returned == ids
    async with factory() as db:
        gone = await db.get(Operator, anna)
        sessions = await db.scalar(select(func.count()).select_from(WebSession).where(WebSession.operator_id == anna))
        entry = await db.scalar(select(AuditEvent).where(AuditEvent.action == "operator.deactivated"))
    assert (gone.is_active, gone.status, sessions) == (False, OperatorStatus.OFFLINE, 0)
    assert entry.details["conversations_returned"] == ids and entry.details["sessions_ended"] == 2

    async def all_boris() -> bool:
        return await _assignees(factory, ids) == [boris] * 3

    await wait_until(all_boris)
    for conversation_id in ids:  # each workflow knows (its escalation window now runs for Boris)
        handle = engine_stack.client.get_workflow_handle(conversation_workflow_id(conversation_id))

        async def knows(handle=handle) -> bool:
            return (await handle.query(STATE_QUERY, result_type=ConversationState)).assignee_id == boris

        await wait_until(knows)


async def test_with_nobody_free_the_conversations_wait_in_the_pool_until_someone_comes_online(world, engine_stack):
    factory = world.factory
    anna = await world.operator()
    conversation_id = (await ingest(factory, world.event("deact-pool"))).conversation_id

    async def annas() -> bool:
        return await _assignees(factory, [conversation_id]) == [anna]

    await wait_until(annas)
    carl = await world.operator(status=OperatorStatus.OFFLINE)
    async with factory() as db, db.begin():
        admin = Operator(email="root2@example.com", display_name="Root", password_hash="-", role=OperatorRole.ADMIN)
        db.add(admin)
        await db.flush()
        await accounts.deactivate(db, admin, anna)
    assert await _assignees(factory, [conversation_id]) == [None]  # back in the pool at once
    handle = engine_stack.client.get_workflow_handle(conversation_workflow_id(conversation_id))

    async def workflow_sees_the_pool() -> bool:
        return (await handle.query(STATE_QUERY, result_type=ConversationState)).assignee_id is None

    await wait_until(workflow_sees_the_pool)
    async with factory() as db, db.begin():
        await operators.set_status(db, await db.get(Operator, carl), OperatorStatus.ONLINE)

    async def carls() -> bool:
        return await _assignees(factory, [conversation_id]) == [carl]

    await wait_until(carls)
