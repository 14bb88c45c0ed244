"""Staff notification rules as admins set them per branch: a staff chat (every customer message,
the first of a conversation, or only while unassigned) or an operator's own Telegram chat (the
conversations assigned to them), sent by one of our Telegram bots. Each rule has its notifier
workflow (`staff-notify-{id}`): start it after commit with `WorkflowStarter.start_staff_notifier`;
a deleted rule's workflow ends by itself."""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ChannelKind
from domain.staff_notifications import Mode
from domain.wording import N_
from infra.models import Branch, Inbox, Operator, RealtimeEvent, StaffNotificationRule
from services import audit
from services.errors import Invalid


class RuleInput(BaseModel):
    branch_id: int = Field(ge=1)
    mode: Mode = Mode.EVERY
    chat_id: str = Field(pattern=r"^-?\d{1,20}$", description="The Telegram chat (groups start with -100).")
    bot_inbox_id: int = Field(ge=1, description="The Telegram inbox whose bot sends.")
    operator_id: int | None = Field(default=None, ge=1, description="An operator's own chat: their conversations.")


async def add_rule(db: AsyncSession, data: RuleInput, *, actor_operator_id: int | None) -> StaffNotificationRule:
    if await db.get(Branch, data.branch_id) is None:
        raise Invalid(N_("There is no such branch."), field="branch_id")
    inbox = await db.get(Inbox, data.bot_inbox_id)
    if inbox is None or inbox.channel != ChannelKind.TELEGRAM or not inbox.is_active:
        raise Invalid(N_("Choose an active Telegram bot to send the notifications."), field="bot_inbox_id")
    if data.operator_id is not None and await db.get(Operator, data.operator_id) is None:
        raise Invalid(N_("There is no such operator."), field="operator_id")
    rule = StaffNotificationRule(
        branch_id=data.branch_id,
        mode=data.mode,
        chat_id=data.chat_id,
        bot_inbox_id=data.bot_inbox_id,
        operator_id=data.operator_id,
        # a new rule speaks of what comes, not of the past
        cursor=await db.scalar(select(func.coalesce(func.max(RealtimeEvent.id), 0))),
    )
    db.add(rule)
    await db.flush()
    audit.record(
        db,
        "staff_notifications.rule_added",
        operator_id=actor_operator_id,
        details={"rule_id": rule.id, "branch_id": data.branch_id, "mode": data.mode.value, "for": data.operator_id},
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
