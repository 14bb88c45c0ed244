"""Staff notifications in Telegram (seed 004) on the real engine: a burst becomes one message,
the rule's filters hold, and a Telegram outage neither slows nor fails inbound: it is logged and
counted, nothing else."""

from __future__ import annotations

import logging

import httpx
from sqlalchemy import func, select, text

from domain.ids import staff_notifier_workflow_id
from domain.staff_notifications import STAFF_NOTIFIER_WORKFLOW, NotifierInput
from infra.models import Conversation, Message, StaffNotificationRule
from services import staff_notifications
from services.ingest import ingest
from tests.fakes.faults import Fault
from tests.integration.conftest import wait_until
from tests.integration.test_webhooks import SECRET, update

STAFF_CHAT = "-100777"


async def _routed_conversations(world, users: list[str]) -> None:
    """Conversations the engine has routed to the world's branch already."""
    for user in users:
        await ingest(world.factory, world.event(user, f"{user} opens"))

    async def routed() -> bool:
        async with world.factory() as db:
            waiting = await db.scalar(select(func.count()).where(Conversation.branch_id.is_(None)))
        return waiting == 0

    await wait_until(routed)


async def _rule(world, engine, *, mode: str = "every", operator_id: int | None = None) -> int:
    async with world.factory() as db, db.begin():
        rule = await staff_notifications.add_rule(
            db,
            staff_notifications.RuleInput(
                branch_id=world.branch_id,
                mode=mode,
                chat_id=STAFF_CHAT,
                bot_inbox_id=world.inbox_id,
                operator_id=operator_id,
            ),
            actor_operator_id=None,
        )
    await engine.client.start_workflow(
        STAFF_NOTIFIER_WORKFLOW,
        NotifierInput(rule_id=rule.id, watch_seconds=2),
        id=staff_notifier_workflow_id(rule.id),
        task_queue=engine.task_queue,
    )
    return rule.id


async def test_a_burst_of_customer_messages_is_one_telegram_message(world, engine_stack, fake_telegram):
    await _routed_conversations(world, ["ann", "bob"])
    await _rule(world, engine_stack)
    # the notifier cannot read its rule until all three are stored: one burst, however slow
    # the machine is between the messages
    async with world.factory() as db, db.begin():
        await db.execute(text("LOCK TABLE staff_notification_rules IN ACCESS EXCLUSIVE MODE"))
        for user, body in (("ann", "one"), ("bob", "two"), ("ann", "three")):
            await ingest(world.factory, world.event(user, body))
    await wait_until(lambda: fake_telegram.sent_messages(STAFF_CHAT))
    await wait_until(lambda: sum(m.text.count("#") for m in fake_telegram.sent_messages(STAFF_CHAT)) >= 2)
    sent = fake_telegram.sent_messages(STAFF_CHAT)
    assert len(sent) == 1, [m.text for m in sent]
    assert sent[0].text.startswith("3 new messages in 2 conversations")
    async with world.factory() as db:
        ids = (await db.scalars(select(Conversation.id).order_by(Conversation.id))).all()
    assert all(f"/conversations/{cid}" in sent[0].text for cid in ids)


async def test_only_unassigned_conversations_notify_an_unassigned_rule(world, engine_stack, fake_telegram):
    operator = await world.operator()  # online: new conversations are assigned to them
    await _routed_conversations(world, ["cid"])
    await _rule(world, engine_stack, mode="unassigned")
    await ingest(world.factory, world.event("cid", "assigned already"))
    async with world.factory() as db, db.begin():
        await db.execute(Conversation.__table__.update().values(assignee_id=None))
    await ingest(world.factory, world.event("cid", "nobody has it now"))
    await wait_until(lambda: fake_telegram.sent_messages(STAFF_CHAT))
    sent = fake_telegram.sent_messages(STAFF_CHAT)
    assert len(sent) == 1 and sent[0].text.startswith("New message"), [m.text for m in sent]
    assert operator


async def test_a_telegram_outage_does_not_slow_or_fail_inbound(world, engine_stack, fake_telegram, live_api, caplog):
    await _routed_conversations(world, ["dan"])
    rule_id = await _rule(world, engine_stack)
    fake_telegram.fail_next(Fault.SLOW, method="sendMessage", chat_id=STAFF_CHAT, delay=15)
    url = f"{live_api.url}/webhooks/telegram/{world.inbox_id}"
    dan = int(world.event("dan").provider_user_id)
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.post(url, json=update(900, "first", user=dan), headers=SECRET)).status_code == 200
        await wait_until(lambda: fake_telegram.faults.pending() == 0)  # the notifier now waits on Telegram
        answers = [
            (await http.post(url, json=update(901 + n, f"more {n}", user=dan), headers=SECRET)).status_code
            for n in range(5)
        ]
    assert answers == [200] * 5
    assert fake_telegram.requests("sendMessage", chat_id=STAFF_CHAT) == []  # Telegram has not answered yet
    async with world.factory() as db:
        stored = await db.scalar(select(func.count()).select_from(Message).where(Message.text.like("more %")))
    assert stored == 5

    fake_telegram.fail_next(Fault.SERVER_ERROR, count=None, method="sendMessage", chat_id=STAFF_CHAT)

    async def failure_counted() -> bool:
        async with world.factory() as db:
            rule = await db.get(StaffNotificationRule, rule_id)
        return rule.failed >= 1 and rule.last_error is not None

    with caplog.at_level(logging.WARNING, logger="activities.staff_notifications"):
        await wait_until(failure_counted, timeout=60)
    assert any("staff notification to chat" in r.getMessage() for r in caplog.records)
