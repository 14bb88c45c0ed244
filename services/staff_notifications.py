"""Staff notification rules as admins set them per branch: a staff chat (every customer message,
the first of a conversation, or only while unassigned) or an operator's own Telegram chat (the
conversations assigned to them), sent by one of our Telegram bots. Each rule has its notifier
workflow (`staff-notify-{id}`): start it after commit with `WorkflowStarter.start_staff_notifier`;
a deleted rule's workflow ends by itself."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ChannelKind
from domain.staff_notifications import Mode
from infra.models import Branch, Inbox, Operator, RealtimeEvent, StaffNotificationRule
from services import audit
from services.errors import Invalid

_CHAT_ID = re.compile(r"-?\d{1,20}")


async def add_rule(
    db: AsyncSession,
    *,
    branch_id: int,
    mode: str,
    chat_id: str,
    bot_inbox_id: int,
    operator_id: int | None = None,
    actor_operator_id: int | None,
) -> StaffNotificationRule:
    if await db.get(Branch, branch_id) is None:
        raise Invalid("There is no such branch.")
    try:
        mode = Mode(mode)
    except ValueError:
        raise Invalid("Choose when to notify: every message, the first of a conversation, or unassigned.") from None
    chat_id = chat_id.strip()
    if not _CHAT_ID.fullmatch(chat_id):
        raise Invalid("A Telegram chat id is a number (groups start with -100).")
    inbox = await db.get(Inbox, bot_inbox_id)
    if inbox is None or inbox.channel != ChannelKind.TELEGRAM or not inbox.is_active:
        raise Invalid("Choose an active Telegram bot to send the notifications.")
    if operator_id is not None and await db.get(Operator, operator_id) is None:
        raise Invalid("There is no such operator.")
    rule = StaffNotificationRule(
        branch_id=branch_id,
        mode=mode,
        chat_id=chat_id,
        bot_inbox_id=bot_inbox_id,
        operator_id=operator_id,
        # a new rule speaks of what comes, not of the past
        cursor=await db.scalar(select(func.coalesce(func.max(RealtimeEvent.id), 0))),
    )
    db.add(rule)
    await db.flush()
    audit.record(
        db,
        "staff_notifications.rule_added",
        operator_id=actor_operator_id,
        details={"rule_id": rule.id, "branch_id": branch_id, "mode": mode.value, "for_operator": operator_id},
    )
    return rule


async def delete_rule(db: AsyncSession, rule: StaffNotificationRule, *, actor_operator_id: int | None) -> None:
    audit.record(db, "staff_notifications.rule_deleted", operator_id=actor_operator_id, details={"rule_id": rule.id})
    await db.delete(rule)


async def rules(db: AsyncSession, branch_id: int | None = None) -> list[StaffNotificationRule]:
    query = select(StaffNotificationRule).order_by(StaffNotificationRule.id)
    if branch_id is not None:
        query = query.where(StaffNotificationRule.branch_id == branch_id)
    return list((await db.scalars(query)).all())
