"""Activities of ConversationWorkflow: every state change it decides is written here.

Each is idempotent (a retried activity must not assign twice or send twice) and guarded by
the current database state, which stays the arbiter when a notice and a timer cross.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.assignment import choose_operator, next_escalation_target
from domain.conversation import (
    ALERT_SUPERVISORS,
    ASSIGN_OPERATOR,
    CLOSE_CONVERSATION,
    DISPATCH_BRANCH_BACKLOG,
    ESCALATE_CONVERSATION,
    LOAD_BRANCH_SCHEDULE,
    LOAD_CONVERSATION,
    REOPEN_CONVERSATION,
    RESOLVE_CONVERSATION,
    RESOLVE_IF_INACTIVE,
    SEND_SYSTEM_MESSAGE,
    TRANSFER_CONVERSATION,
    AlertRequest,
    Assignment,
    AssignRequest,
    BranchRef,
    ConversationRef,
    ConversationState,
    EscalateRequest,
    InactivityCheck,
    InactivityRequest,
    InboxPolicy,
    ResolveRequest,
    SystemMessageRequest,
    TransferRequest,
)
from domain.enums import ConversationStatus, MessageFormat, SenderKind
from domain.events import ConversationRouted, ConversationStatusChanged, EscalationExhausted
from domain.routing import RegionRule as RegionRuleSpec, branch_for_region
from infra import metrics
from infra.event_log import conversation_ids, load_conversation_ids, publish
from infra.models import Branch, Contact, Conversation, Inbox, Operator, RegionRule
from infra.settings import Settings
from services import audit
from services.assignment import LIVE, dispatch_backlog, lock_branch, online_candidates, set_assignee
from services.outgoing import queue_message


class ConversationActivities:
    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings

    async def _conversation(self, db: AsyncSession, conversation_id: int) -> Conversation:
        conversation = await db.get(Conversation, conversation_id, with_for_update=True, populate_existing=True)
        if conversation is None:
            raise ApplicationError(f"conversation {conversation_id} does not exist", non_retryable=True)
        return conversation

    async def _in_locked_branch(self, db: AsyncSession, conversation_id: int) -> Conversation:
        """The conversation, locked after its branch: assignments in a branch run one at a time
        (always branch lock first, then the row, so no two paths deadlock)."""
        branch_id = await db.scalar(select(Conversation.branch_id).where(Conversation.id == conversation_id))
        if branch_id is not None:
            await lock_branch(db, branch_id)
        return await self._conversation(db, conversation_id)

    @activity.defn(name=LOAD_CONVERSATION)
    async def load_conversation(self, request: ConversationRef) -> ConversationState:
        """First run of a workflow: route to a branch and gather what the workflow acts on."""
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            inbox = await db.get(Inbox, conversation.inbox_id)
            contact = await db.get(Contact, conversation.contact_id)
            assert inbox is not None and contact is not None
            if conversation.branch_id is None:
                conversation.branch_id = await self._route(db, contact.region)
                await publish(db, ConversationRouted.of(conversation_ids(conversation)))
            schedule = await db.scalar(select(Branch.working_hours).where(Branch.id == conversation.branch_id))
            return ConversationState(
                conversation_id=conversation.id,
                channel=inbox.channel.value,
                contact_name=contact.display_name,
                branch_id=conversation.branch_id,
                assignee_id=conversation.assignee_id,
                status=conversation.status,
                opened=conversation.opened_at is not None,
                policy=self._policy(inbox.settings),
                schedule=schedule or None,
            )

    async def _route(self, db: AsyncSession, region: str | None) -> int | None:
        rules = [RegionRuleSpec(region=r.region, branch_id=r.branch_id) for r in await db.scalars(select(RegionRule))]
        default = await db.scalar(select(Branch.id).where(Branch.is_default))
        if default is None:
            default = await db.scalar(select(Branch.id).order_by(Branch.id).limit(1))
        if default is None:
            return None
        return branch_for_region(rules, region, default)

    def _policy(self, settings: dict[str, Any]) -> InboxPolicy:
        defaults = {
            "escalation_minutes": self._settings.default_escalation_minutes,
            "resolved_close_days": self._settings.resolved_close_days,
            "inactive_resolve_days": self._settings.inactive_resolve_days,
        }
        known = set(InboxPolicy.model_fields)
        return InboxPolicy.model_validate(
            defaults | {k: v for k, v in settings.items() if k in known and v is not None}
        )

    @activity.defn(name=LOAD_BRANCH_SCHEDULE)
    async def load_branch_schedule(self, request: BranchRef) -> dict[str, Any] | None:
        async with self._factory() as db:
            hours = await db.scalar(select(Branch.working_hours).where(Branch.id == request.branch_id))
        return hours or None

    @activity.defn(name=ASSIGN_OPERATOR)
    async def assign_operator(self, request: AssignRequest) -> Assignment:
        async with self._factory() as db, db.begin():
            conversation = await self._in_locked_branch(db, request.conversation_id)
            branch_id = conversation.branch_id
            if conversation.assignee_id is None and conversation.status in LIVE and branch_id is not None:
                chosen = choose_operator(await online_candidates(db, branch_id), set(request.exclude))
                if chosen is not None:
                    await set_assignee(db, conversation, chosen, action="conversation.assigned")
            return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)

    @activity.defn(name=ESCALATE_CONVERSATION)
    async def escalate_conversation(self, request: EscalateRequest) -> Assignment:
        current = request.current_assignee_id
        async with self._factory() as db, db.begin():
            conversation = await self._in_locked_branch(db, request.conversation_id)
            branch_id = conversation.branch_id
            if conversation.assignee_id != current:
                # reassigned meanwhile (transfer, dispatch): adopt that, the workflow hears of it
                return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)
            if conversation.opened_at is not None:
                return Assignment(assignee_id=current, branch_id=conversation.branch_id, opened=True)
            candidates = await online_candidates(db, branch_id) if branch_id is not None else []
            target = next_escalation_target(candidates, set(request.timed_out), current)
            await set_assignee(db, conversation, target, action="conversation.escalated")
            metrics.ESCALATIONS.inc()
            return Assignment(assignee_id=target, branch_id=conversation.branch_id)

    @activity.defn(name=ALERT_SUPERVISORS)
    async def alert_supervisors(self, request: AlertRequest) -> None:
        conversation_id = request.conversation_id
        async with self._factory() as db, db.begin():
            ref = await load_conversation_ids(db, conversation_id)
            audit.record(
                db,
                "conversation.escalation_exhausted",
                conversation_id=conversation_id,
                details={"timed_out": request.timed_out},
            )
            await publish(db, EscalationExhausted.of(ref, timed_out=request.timed_out))

    @activity.defn(name=TRANSFER_CONVERSATION)
    async def transfer_conversation(self, request: TransferRequest) -> Assignment:
        target_operator, target_branch = request.target_operator_id, request.target_branch_id
        async with self._factory() as db, db.begin():
            if target_operator is not None:
                operator = await db.get(Operator, target_operator)
                if operator is None or not operator.is_active:
                    raise ApplicationError("transfer target is not an active operator", non_retryable=True)
                branch_id = operator.branch_id
            else:
                branch_id = target_branch
            if branch_id is None or await db.get(Branch, branch_id) is None:
                raise ApplicationError("transfer target branch does not exist", non_retryable=True)
            await lock_branch(db, branch_id)
            conversation = await self._conversation(db, request.conversation_id)
            if target_operator is None:
                # "first free in branch X": the least-loaded online operator there, or its pool
                target_operator = choose_operator(await online_candidates(db, branch_id))
            await set_assignee(
                db,
                conversation,
                target_operator,
                action="conversation.transferred",
                actor_operator_id=request.by_operator_id,
                branch_id=branch_id,
            )
            return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)

    @activity.defn(name=RESOLVE_CONVERSATION)
    async def resolve_conversation(self, request: ResolveRequest) -> bool:
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            if conversation.status not in LIVE:
                return conversation.status == ConversationStatus.RESOLVED
            await self._set_status(
                db, conversation, ConversationStatus.RESOLVED, request.by_operator_id, "conversation.resolved"
            )
            return True

    @activity.defn(name=REOPEN_CONVERSATION)
    async def reopen_conversation(self, request: ConversationRef) -> Assignment:
        """The customer wrote into a resolved conversation (ingest already set it open)."""
        conversation_id = request.conversation_id
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, conversation_id)
            conversation.opened_at = None  # the assignee must look again: escalation restarts
            if conversation.assignee_id is not None:
                conversation.assigned_at = datetime.now(UTC)
            audit.record(db, "conversation.reopened", conversation_id=conversation_id)
            return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)

    @activity.defn(name=CLOSE_CONVERSATION)
    async def close_conversation(self, request: ConversationRef) -> bool:
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            if conversation.status == ConversationStatus.CLOSED:
                return True
            if conversation.status != ConversationStatus.RESOLVED:
                return False  # reopened meanwhile: the REOPENED notice is on its way
            await self._set_status(db, conversation, ConversationStatus.CLOSED, None, "conversation.closed")
            return True

    @activity.defn(name=RESOLVE_IF_INACTIVE)
    async def resolve_if_inactive(self, request: InactivityRequest) -> InactivityCheck:
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            idle_until = conversation.last_activity_at + timedelta(days=request.inactive_days)
            if conversation.status in LIVE and idle_until <= datetime.now(UTC):
                await self._set_status(
                    db, conversation, ConversationStatus.RESOLVED, None, "conversation.auto_resolved"
                )
                return InactivityCheck(resolved=True)
            return InactivityCheck(resolved=False, next_check_at=idle_until)

    async def _set_status(
        self, db: AsyncSession, conversation: Conversation, status: ConversationStatus, by: int | None, action: str
    ) -> None:
        now = datetime.now(UTC)
        previous, conversation.status = conversation.status, status
        if status == ConversationStatus.RESOLVED:
            conversation.resolved_at = now
        elif status == ConversationStatus.CLOSED:
            conversation.closed_at = now
        conversation.last_activity_at = now
        audit.record(db, action, operator_id=by, conversation_id=conversation.id)
        await publish(
            db, ConversationStatusChanged.of(conversation_ids(conversation), status=status, previous_status=previous)
        )

    @activity.defn(name=SEND_SYSTEM_MESSAGE)
    async def send_system_message(self, request: SystemMessageRequest) -> int:
        """A message row (queued) plus its delivery, once per dedup key."""
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            message_id, _ = await queue_message(
                db,
                conversation,
                request.text,
                fmt=MessageFormat.MARKDOWN,
                sender_kind=SenderKind.SYSTEM,
                idempotency_key=f"system:{request.conversation_id}:{request.dedup}",
                purpose=request.purpose,
            )
            return message_id

    @activity.defn(name=DISPATCH_BRANCH_BACKLOG)
    async def dispatch_branch_backlog(self, request: BranchRef) -> list[int]:
        if request.branch_id is None:
            return []
        async with self._factory() as db, db.begin():
            return await dispatch_backlog(db, request.branch_id)

    def all(self) -> list:
        return [
            self.load_conversation,
            self.load_branch_schedule,
            self.assign_operator,
            self.escalate_conversation,
            self.alert_supervisors,
            self.transfer_conversation,
            self.resolve_conversation,
            self.reopen_conversation,
            self.close_conversation,
            self.resolve_if_inactive,
            self.send_system_message,
            self.dispatch_branch_backlog,
        ]
