"""Contracts of ConversationWorkflow: its names, its input, its state, the notices it receives
and what each of its activities takes and answers.

All notices travel through the transactional outbox (so a Temporal outage loses none) and
carry the outbox row id, which the workflow uses to ignore a notice the relay sent twice.

Actions that change state and may be retried (transfer, reopen, alerting supervisors) carry a
key naming what caused them; the database remembers the last key applied to a conversation, so
a retry changes nothing a second time (one action at a time runs per conversation).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from domain.enums import ConversationStatus, RatingMode

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
CONVERSATION_WORKFLOW = "ConversationWorkflow"
NOTIFY = "notify"  # the one signal: a ConversationNotice from the outbox relay
STATE_QUERY = "state"
LOAD_CONVERSATION = "load_conversation"
LOAD_BRANCH_SCHEDULE = "load_branch_schedule"
ASSIGN_OPERATOR = "assign_operator"
ESCALATE_CONVERSATION = "escalate_conversation"
ALERT_SUPERVISORS = "alert_supervisors"
TRANSFER_CONVERSATION = "transfer_conversation"
RESOLVE_CONVERSATION = "resolve_conversation"
REOPEN_CONVERSATION = "reopen_conversation"
CLOSE_CONVERSATION = "close_conversation"
RESOLVE_IF_INACTIVE = "resolve_if_inactive"
SEND_SYSTEM_MESSAGE = "send_system_message"
DISPATCH_BRANCH_BACKLOG = "dispatch_branch_backlog"
LOAD_SETTINGS = "load_settings"
REPORT_ACTION_FAILED = "report_action_failed"
WAKE_CONVERSATION = "wake_conversation"
# ApplicationError type of an action the database refuses (its message is for the operator)
ACTION_REFUSED = "ActionRefused"


class NoticeKind(StrEnum):
    STARTED = "started"  # a new conversation (its first customer message is stored)
    REOPENED = "reopened"  # a customer wrote into a resolved conversation
    # an operator reopened it (the database has it open and theirs): nothing is sent to the
    # customer, whose own message is what the offline text and the auto-reply answer
    REOPEN = "reopen"
    BLOCKED = "blocked"  # the contact blocked the bot: no system messages can reach them
    UNBLOCKED = "unblocked"
    OPENED = "opened"  # the assignee opened the conversation: escalation stops for good
    ASSIGNED = "assigned"  # the branch dispatcher assigned a waiting conversation
    TRANSFER = "transfer"  # to an operator, or to the first free operator of a branch
    RESOLVE = "resolve"
    # a customer wrote while the branch is closed: the offline text may be due
    OFF_HOURS_MESSAGE = "off_hours_message"
    # the inbox's settings or the branch's working hours changed: read them again. Written by a
    # trigger on those rows (migration 0007), so every writer's change reaches running workflows.
    SETTINGS_CHANGED = "settings_changed"
    # set aside until `until`, or until the customer's next message (until None): no assignment
    # or escalation meanwhile; the assignee stays
    SNOOZE = "snooze"
    # the snooze ended before its time (the customer wrote, an operator answered): the database
    # has it awake already
    WAKE = "wake"


class ConversationNotice(BaseModel):
    outbox_id: int = 0
    kind: NoticeKind
    operator_id: int | None = None  # who acted (opened, resolve, transfer) or who was assigned
    target_operator_id: int | None = None
    target_branch_id: int | None = None
    until: datetime | None = None  # SNOOZE


class InboxPolicy(BaseModel):
    """The inbox settings the workflow acts on (Inbox.settings JSON, with defaults)."""

    escalation_minutes: float = 4.0
    offline_text: str = ""
    auto_reply: str = ""
    rating_mode: RatingMode = RatingMode.NONE
    rating_text: str = ""
    resolved_close_days: float = 7
    inactive_resolve_days: float = 3


class ConversationState(BaseModel):
    """Everything the workflow knows; handed whole to continue-as-new."""

    conversation_id: int
    channel: str
    contact_name: str = ""
    branch_id: int | None = None
    assignee_id: int | None = None
    status: ConversationStatus = ConversationStatus.OPEN
    assigned_at: datetime | None = None
    opened: bool = False
    # operators who let the escalation timer run out on this conversation
    timed_out: list[int] = Field(default_factory=list)
    # every online operator timed out: it waits in the pool, supervisors were alerted
    pool_exhausted: bool = False
    reachable: bool = True
    policy: InboxPolicy = Field(default_factory=InboxPolicy)
    # domain.schedule.WorkingHours JSON of the branch; None = open around the clock
    schedule: dict[str, Any] | None = None
    offline_sent_for: str | None = None
    auto_replied: bool = False
    resolved_at: datetime | None = None
    # when the inactivity check runs next (it reads last_activity_at from the database)
    inactivity_check_at: datetime | None = None
    last_outbox_id: int = 0
    # a timed action (escalation, close, inactivity check) failed: none runs again before this
    timed_actions_paused_until: datetime | None = None
    snoozed: bool = False
    snoozed_until: datetime | None = None  # None while snoozed: until the customer's next message


class ConversationInput(BaseModel):
    conversation_id: int
    state: ConversationState | None = None  # set on continue-as-new
    # continue as new past this many history events (tests lower it)
    history_limit: int = 8_000


# -- activity inputs ------------------------------------------------------------------------


class ConversationRef(BaseModel):
    """load_conversation, close_conversation, load_settings."""

    conversation_id: int


class ReopenRequest(BaseModel):
    conversation_id: int
    key: str | None = None  # what caused it: a REOPENED notice, or closing finding it reopened


class BranchRef(BaseModel):
    """load_branch_schedule, dispatch_branch_backlog."""

    branch_id: int | None


class AssignRequest(BaseModel):
    conversation_id: int
    exclude: list[int] = Field(default_factory=list)  # operators who let it time out


class EscalateRequest(BaseModel):
    conversation_id: int
    current_assignee_id: int | None  # who let the timer run out; nothing changes if it moved on
    timed_out: list[int] = Field(default_factory=list)


class AlertRequest(BaseModel):
    conversation_id: int
    timed_out: list[int] = Field(default_factory=list)
    key: str | None = None  # the escalation that ran out of operators


class TransferRequest(BaseModel):
    conversation_id: int
    by_operator_id: int | None
    target_operator_id: int | None = None  # exactly one target: an operator ...
    target_branch_id: int | None = None  # ... or the first free operator of a branch
    key: str | None = None  # the TRANSFER notice


class ActionFailure(BaseModel):
    """report_action_failed: an action did not happen; the conversation stays as it was."""

    conversation_id: int
    action: str  # transfer, resolve, escalate, ...
    operator_id: int | None  # who asked for it; None: the workflow's own (timed) action
    reason: str
    refused: bool  # the database refused it (reason is for the operator), not an error


class ResolveRequest(BaseModel):
    conversation_id: int
    by_operator_id: int | None


class WakeRequest(BaseModel):
    """wake_conversation: the snooze until `until` ran out."""

    conversation_id: int
    until: datetime


class InactivityRequest(BaseModel):
    conversation_id: int
    inactive_days: float


# -- activity results -----------------------------------------------------------------------


class Assignment(BaseModel):
    """What the database says after an assignment attempt (the database is the arbiter)."""

    assignee_id: int | None
    branch_id: int | None
    # escalation only: the assignee had already opened it, nothing changed
    opened: bool = False


class ConversationSettings(BaseModel):
    """load_settings: what the inbox and the branch say now."""

    policy: InboxPolicy
    schedule: dict[str, Any] | None = None


class InactivityCheck(BaseModel):
    resolved: bool
    # when to look again (last activity + the inactivity period)
    next_check_at: datetime | None = None


class SystemMessageRequest(BaseModel):
    conversation_id: int
    purpose: str  # offline | auto_reply | rating_request
    text: str
    # makes the message idempotent: one offline text per off-hours period, etc.
    dedup: str
