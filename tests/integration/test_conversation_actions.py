"""Conversation actions against the real database: the workflow's activities run twice with the
same input (as a retry would) change nothing twice; an action that can no longer be carried out
is refused with a reason, reported, and leaves the conversation as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from temporalio.exceptions import ApplicationError

from activities.conversation import ConversationActivities
from domain.conversation import (
    ACTION_REFUSED,
    AlertRequest,
    ReopenRequest,
    TransferRequest,
)
from domain.enums import ConversationStatus
from infra.models import AuditEvent, Conversation, Operator, RealtimeEvent
from services import conversations
from services.errors import Invalid
from services.ingest import ingest
from tests.integration.conftest import wait_until, workflow_state


async def _placed(world, user: str, **values) -> int:
    """A conversation in the world's branch, placed as `values` say, without a workflow."""
    cid = (await ingest(world.factory, world.event(user))).conversation_id
    async with world.factory() as db, db.begin():
        await db.execute(update(Conversation).where(Conversation.id == cid).values(branch_id=world.branch_id, **values))
    return cid


async def _conversation(world, cid: int) -> Conversation:
    async with world.factory() as db:
        return await db.get(Conversation, cid)


async def _count(world, model, *where) -> int:
    async with world.factory() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


async def test_a_retried_first_free_transfer_keeps_the_operator_it_chose(world, settings):
    ann, bob = await world.operator(), await world.operator()
    cid = await _placed(world, "retry-transfer", assignee_id=ann)
    activities = ConversationActivities(world.factory, settings)
    request = TransferRequest(
        conversation_id=cid, by_operator_id=ann, target_branch_id=world.branch_id, key="transfer:41"
    )

    first = await activities.transfer_conversation(request)
    assert first.assignee_id == bob  # ann has this one open already: bob is the least loaded
    async with world.factory() as db, db.begin():  # bob opens it before the retry comes
        await conversations.open_conversation(db, await db.get(Operator, bob), cid)
    # now ann is the least loaded: a transfer run afresh would pick her
    again = await activities.transfer_conversation(request)

    assert again == first
    conversation = await _conversation(world, cid)
    assert conversation.assignee_id == bob and conversation.opened_at is not None
    transferred = AuditEvent.action == "conversation.transferred"
    assert await _count(world, AuditEvent, transferred, AuditEvent.conversation_id == cid) == 1
    assert await _count(world, RealtimeEvent, RealtimeEvent.type == "conversation.assigned") == 1


async def test_a_retried_reopen_does_not_clear_opened_at_again(world, settings):
    ann = await world.operator()
    cid = await _placed(world, "retry-reopen", assignee_id=ann, status=ConversationStatus.OPEN)
    activities = ConversationActivities(world.factory, settings)
    request = ReopenRequest(conversation_id=cid, key="reopen:52")

    await activities.reopen_conversation(request)
    assert (await _conversation(world, cid)).opened_at is None  # she must look again
    async with world.factory() as db, db.begin():
        await conversations.open_conversation(db, await db.get(Operator, ann), cid)
    await activities.reopen_conversation(request)

    assert (await _conversation(world, cid)).opened_at is not None
    reopened = AuditEvent.action == "conversation.reopened"
    assert await _count(world, AuditEvent, reopened, AuditEvent.conversation_id == cid) == 1


async def test_a_retried_supervisor_alert_is_sent_once(world, settings):
    cid = await _placed(world, "retry-alert")
    activities = ConversationActivities(world.factory, settings)
    request = AlertRequest(conversation_id=cid, timed_out=[1, 2], key="alert:2026-11-26T10:00:00+00:00")

    await activities.alert_supervisors(request)
    await activities.alert_supervisors(request)

    exhausted = AuditEvent.action == "conversation.escalation_exhausted"
    assert await _count(world, AuditEvent, exhausted) == 1
    assert await _count(world, RealtimeEvent, RealtimeEvent.type == "alert.escalation_exhausted") == 1


async def test_a_transfer_to_an_operator_who_cannot_take_it_is_refused_before_and_after_the_notice(world, settings):
    ann = await world.operator()
    nomad = await world.operator()
    gone = await world.operator()
    async with world.factory() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == nomad).values(branch_id=None))
        await db.execute(update(Operator).where(Operator.id == gone).values(is_active=False))
    cid = await _placed(world, "refused", assignee_id=ann)

    for target, reason in ((nomad, "no branch"), (gone, "deactivated"), (10**9, "deactivated")):
        async with world.factory() as db, db.begin():
            with pytest.raises(Invalid, match=reason):
                await conversations.request_transfer(db, await db.get(Operator, ann), cid, to_operator_id=target)

    # the notice was written while the target qualified; by the time it is applied she does not
    activities = ConversationActivities(world.factory, settings)
    for target in (nomad, gone):
        request = TransferRequest(conversation_id=cid, by_operator_id=ann, target_operator_id=target, key="t:1")
        with pytest.raises(ApplicationError) as refused:
            await activities.transfer_conversation(request)
        assert refused.value.type == ACTION_REFUSED and refused.value.non_retryable
    conversation = await _conversation(world, cid)
    assert conversation.assignee_id == ann and conversation.last_action_key is None


async def test_a_failed_transfer_is_reported_to_who_asked_and_the_conversation_goes_on(world, engine_stack):
    ann, bob = await world.operator(), await world.operator()
    cid = (await ingest(world.factory, world.event("failed-transfer"))).conversation_id

    async def assigned_to_ann() -> bool:
        state = await workflow_state(engine_stack.client, cid)
        return state is not None and state.assignee_id == ann

    await wait_until(assigned_to_ann)
    async with world.factory() as db, db.begin():
        me = await db.get(Operator, ann)
        await conversations.request_transfer(db, me, cid, to_operator_id=bob)
        # deactivated in the same commit: the notice arrives for an operator who cannot take it
        await db.execute(update(Operator).where(Operator.id == bob).values(is_active=False))

    async def reported() -> AuditEvent | None:
        async with world.factory() as db:
            return await db.scalar(select(AuditEvent).where(AuditEvent.action == "conversation.action_failed"))

    await wait_until(reported)
    entry = await reported()
    assert entry.actor_operator_id == ann and entry.conversation_id == cid
    assert entry.details["action"] == "transfer" and entry.details["refused"]
    async with world.factory() as db:
        (event,) = (
            await db.scalars(select(RealtimeEvent.payload).where(RealtimeEvent.type == "conversation.action_failed"))
        ).all()
    assert event["operator_id"] == ann and event["conversation_id"] == cid and "deactivated" in event["reason"]
    assert (await _conversation(world, cid)).assignee_id == ann

    # its life goes on
    async with world.factory() as db, db.begin():
        await conversations.request_resolve(db, await db.get(Operator, ann), cid)
    await wait_until(lambda: _status_is(world, cid, ConversationStatus.RESOLVED))


async def _status_is(world, cid: int, status: ConversationStatus) -> bool:
    return (await _conversation(world, cid)).status == status
