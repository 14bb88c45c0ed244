"""Activities of ConversationWorkflow: every state change it decides is written here.

Each is idempotent (a retried activity must not assign twice or send twice) and guarded by
the current database state, which stays the arbiter when a notice and a timer cross. Those the
state alone cannot guard (transfer, reopen, alerting supervisors) remember the key of what
caused them in `conversations.last_action_key`. An action the database refuses raises
ACTION_REFUSED with a message for the operator; the workflow reports it and goes on.
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
    ACTION_REFUSED,
    ALERT_SUPERVISORS,
    ASSIGN_OPERATOR,
    CLOSE_CONVERSATION,
    DISPATCH_BRANCH_BACKLOG,
    ESCALATE_CONVERSATION,
    LOAD_BRANCH_SCHEDULE,
    LOAD_CONVERSATION,
    LOAD_SETTINGS,
    REOPEN_CONVERSATION,
    REPORT_ACTION_FAILED,
    RESOLVE_CONVERSATION,
    RESOLVE_IF_INACTIVE,
    SEND_SYSTEM_MESSAGE,
    TRANSFER_CONVERSATION,
    WAKE_CONVERSATION,
    ActionFailure,
    AlertRequest,
    Assignment,
    AssignRequest,
    BranchRef,
    ConversationRef,
    ConversationSettings,
    ConversationState,
    EscalateRequest,
    InactivityCheck,
    InactivityRequest,
    InboxPolicy,
    ReopenRequest,
    ResolveRequest,
    SystemMessageRequest,
    TransferRequest,
    WakeRequest,
)
from domain.enums import ConversationStatus, MessageFormat, SenderKind
from domain.events import (
    ConversationActionFailed,
    ConversationRouted,
    ConversationStatusChanged,
    EscalationExhausted,
)
from infra import metrics
from infra.event_log import conversation_ids, load_conversation_ids, publish
from infra.models import Branch, Contact, Conversation, Inbox, Operator
from infra.settings import Settings
from services import audit, snoozes
from services.assignment import LIVE, dispatch_backlog, lock_branch, online_candidates, set_assignee
from services.branches import which_branch
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
            placed = (
                await db.execute(
                    select(Conversation.inbox_id, Conversation.branch_id).where(
                        Conversation.id == request.conversation_id
                    )
                )
            ).one_or_none()
            if placed is None:
                raise ApplicationError(f"conversation {request.conversation_id} does not exist", non_retryable=True)
            # read before the conversation is locked, as the settings trigger locks in that order
            inbox = await _settings_row(db, Inbox, placed.inbox_id)
            await _settings_row(db, Branch, placed.branch_id)
            conversation = await self._conversation(db, request.conversation_id)
            contact = await db.get(Contact, conversation.contact_id)
            assert inbox is not None and contact is not None
            if conversation.branch_id is None:
                routed = await which_branch(db, contact.region, inbox_default=inbox.default_branch_id)
                conversation.branch_id = routed.branch.id if routed.branch else None
                await publish(db, ConversationRouted.of(conversation_ids(conversation)))
            branch = await _settings_row(db, Branch, conversation.branch_id)
            return ConversationState(
                conversation_id=conversation.id,
                channel=inbox.channel.value,
                contact_name=contact.display_name,
                branch_id=conversation.branch_id,
                assignee_id=conversation.assignee_id,
                status=conversation.status,
                opened=conversation.opened_at is not None,
                policy=self._policy(inbox.settings),
                schedule=(branch.working_hours or None) if branch is not None else None,
            )

    @activity.defn(name=LOAD_SETTINGS)
    async def load_settings(self, request: ConversationRef) -> ConversationSettings:
        """The inbox's settings and the branch's working hours as they are now."""
        async with self._factory() as db:
            row = (
                await db.execute(
                    select(Inbox.settings, Branch.working_hours)
                    .select_from(Conversation)
                    .join(Inbox, Inbox.id == Conversation.inbox_id)
                    .outerjoin(Branch, Branch.id == Conversation.branch_id)
                    .where(Conversation.id == request.conversation_id)
                )
            ).one_or_none()
        if row is None:
            raise ApplicationError(f"conversation {request.conversation_id} does not exist", non_retryable=True)
        return ConversationSettings(policy=self._policy(row.settings), schedule=row.working_hours or None)

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
            conversation = await self._conversation(db, conversation_id)
            if _done(conversation, request.key):
                return
            audit.record(
                db,
                "conversation.escalation_exhausted",
                conversation_id=conversation_id,
                details={"timed_out": request.timed_out},
            )
            await publish(db, EscalationExhausted.of(conversation_ids(conversation), timed_out=request.timed_out))

    @activity.defn(name=TRANSFER_CONVERSATION)
    async def transfer_conversation(self, request: TransferRequest) -> Assignment:
        target_operator = request.target_operator_id
        async with self._factory() as db, db.begin():
            last = select(Conversation.last_action_key).where(Conversation.id == request.conversation_id)
            if request.key is not None and await db.scalar(last) == request.key:
                # a retry of one that committed: the target may not qualify any more, but it has it
                conversation = await self._conversation(db, request.conversation_id)
                return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)
            branch_id = await self._transfer_target(db, request)
            await lock_branch(db, branch_id)
            conversation = await self._conversation(db, request.conversation_id)
            if _done(conversation, request.key):
                return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)
            if conversation.status not in LIVE:
                raise _refused("The conversation is no longer open.")
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

    @staticmethod
    async def _transfer_target(db: AsyncSession, request: TransferRequest) -> int:
        """The target's branch, read (and held) before the conversation is locked; refused when
        the target cannot take it, as it may have changed since the request was checked."""
        if request.target_operator_id is not None:
            operator = await db.get(Operator, request.target_operator_id)
            if operator is None or not operator.is_active:
                raise _refused("That operator no longer exists or is deactivated.")
            if operator.branch_id is None:
                raise _refused("That operator is in no branch.")
            branch_id = operator.branch_id
        else:
            branch_id = request.target_branch_id
        if branch_id is None or await _settings_row(db, Branch, branch_id) is None:
            raise _refused("That branch no longer exists.")
        return branch_id

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
    async def reopen_conversation(self, request: ReopenRequest) -> Assignment:
        """The customer wrote into a resolved conversation (ingest already set it open)."""
        conversation_id = request.conversation_id
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, conversation_id)
            if _done(conversation, request.key):
                return Assignment(assignee_id=conversation.assignee_id, branch_id=conversation.branch_id)
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

    @activity.defn(name=WAKE_CONVERSATION)
    async def wake_conversation(self, request: WakeRequest) -> bool:
        """The snooze's time came. Nothing changes when it woke otherwise meanwhile or was snoozed
        again (a newer notice tells the workflow)."""
        async with self._factory() as db, db.begin():
            conversation = await self._conversation(db, request.conversation_id)
            if conversation.snoozed_at is None or conversation.snoozed_until != request.until:
                return False
            return await snoozes.end(db, conversation, reason=snoozes.TIME, tell_workflow=False)

    @activity.defn(name=REPORT_ACTION_FAILED)
    async def report_action_failed(self, request: ActionFailure) -> None:
        """Audited, and told to the operator who asked (and supervisors) as it happens."""
        async with self._factory() as db, db.begin():
            ref = await load_conversation_ids(db, request.conversation_id)
            audit.record(
                db,
                "conversation.action_failed",
                operator_id=request.operator_id,
                conversation_id=request.conversation_id,
                details={"action": request.action, "reason": request.reason, "refused": request.refused},
            )
            await publish(
                db,
                ConversationActionFailed.of(
                    ref,
                    action=request.action,
                    operator_id=request.operator_id,
                    reason=request.reason,
                    refused=request.refused,
                ),
            )

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
            self.load_settings,
            self.report_action_failed,
            self.wake_conversation,
        ]


def _refused(message: str) -> ApplicationError:
    return ApplicationError(message, type=ACTION_REFUSED, non_retryable=True)


def _done(conversation: Conversation, key: str | None) -> bool:
    """True when the action keyed `key` was applied already (this is a retry); else marks it
    applied, in the caller's transaction."""
    if key is not None and conversation.last_action_key == key:
        return True
    conversation.last_action_key = key
    return False


async def _settings_row(db: AsyncSession, model: type[Inbox] | type[Branch], row_id: int | None) -> Any:
    """An inbox or branch row, share-locked: a concurrent settings change waits for this
    transaction, so its trigger finds the conversation this one makes depend on the row, or
    this one reads the new settings (migration 0007)."""
    if row_id is None:
        return None
    return await db.get(model, row_id, with_for_update={"read": True})
