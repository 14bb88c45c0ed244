"""The realtime event vocabulary: every event the cabinet and the widget receive, named as an
integrator would name it (outgoing webhooks will speak the same words).

Each event is a typed model with one name (`NAME`) and one builder (`of(...)` for events about
a conversation, the constructor otherwise). Its payload carries ids and the scope the
visibility rule needs (conversation, inbox, branch, assignee, the previous placement after a
reassignment) and nothing secret: the cabinet loads what it shows through its own, checked
queries. Hand-written SQL produces the same JSON through `infra.event_log.event_rows_sql`,
which reads the field names from these models.

Durable events get an ordered id and are replayed to a client that reconnects; the few that
are only worth seeing live (typing, presence) are `DURABLE = False`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from domain.enums import ConversationStatus, DeliveryStatus, MessageDirection, OperatorStatus, SenderKind
from domain.visibility import Audience, EventScope, Placement

# A NOTIFY payload must stay under 8000 bytes; every free-text field is capped well below.
TEXT_LIMIT = 500


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    NAME: ClassVar[str]
    AUDIENCE: ClassVar[Audience]
    DURABLE: ClassVar[bool] = True

    def scope(self) -> EventScope:
        return EventScope(self.AUDIENCE)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ConversationIds(BaseModel):
    """A conversation as events name it: the ids every conversation event carries."""

    model_config = ConfigDict(frozen=True)

    conversation_id: int
    inbox_id: int
    branch_id: int | None = None
    assignee_id: int | None = None


class ConversationEvent(Event):
    AUDIENCE: ClassVar[Audience] = Audience.STAFF

    conversation_id: int
    inbox_id: int
    branch_id: int | None
    assignee_id: int | None

    @classmethod
    def of(cls, conversation: ConversationIds, **fields: Any) -> Self:
        return cls(**conversation.model_dump(), **fields)

    def scope(self) -> EventScope:
        return EventScope(self.AUDIENCE, place=Placement(self.conversation_id, self.branch_id, self.assignee_id))


class MessageChange(StrEnum):
    EDITED = "edited"
    ATTACHMENTS = "attachments"  # its files were fetched from the provider (or failed to be)


class MessageCreated(ConversationEvent):
    NAME: ClassVar[str] = "message.created"
    AUDIENCE: ClassVar[Audience] = Audience.CONVERSATION

    message_id: int
    direction: MessageDirection
    sender_kind: SenderKind
    purpose: str | None = None  # a system message's reason: offline, auto_reply, rating_request
    note: bool = False  # a private note: for staff, never for the customer

    def scope(self) -> EventScope:
        if self.note:
            return EventScope(Audience.STAFF, place=Placement(self.conversation_id, self.branch_id, self.assignee_id))
        return super().scope()


class MessageUpdated(ConversationEvent):
    NAME: ClassVar[str] = "message.updated"
    AUDIENCE: ClassVar[Audience] = Audience.CONVERSATION

    message_id: int
    change: MessageChange


class MessageStatusChanged(ConversationEvent):
    NAME: ClassVar[str] = "message.status_changed"

    message_id: int
    status: DeliveryStatus
    error: str | None = Field(default=None, max_length=TEXT_LIMIT)

    @classmethod
    def of(cls, conversation: ConversationIds, **fields: Any) -> Self:
        if fields.get("error"):
            fields["error"] = fields["error"][:TEXT_LIMIT]
        return super().of(conversation, **fields)


class ConversationCreated(ConversationEvent):
    NAME: ClassVar[str] = "conversation.created"

    contact_id: int


class ConversationRouted(ConversationEvent):
    """The conversation got its branch (it had none, so only supervisors saw it)."""

    NAME: ClassVar[str] = "conversation.routed"


class Reassignment(ConversationEvent):
    previous_branch_id: int | None
    previous_assignee_id: int | None

    def scope(self) -> EventScope:
        previous = Placement(self.conversation_id, self.previous_branch_id, self.previous_assignee_id)
        return EventScope(
            self.AUDIENCE,
            place=Placement(self.conversation_id, self.branch_id, self.assignee_id),
            previous=previous,
        )


class AssignmentReason(StrEnum):
    ASSIGNED = "assigned"  # chosen when the conversation arrived
    FROM_POOL = "from_pool"  # an operator came online and took it from the branch's pool
    TRANSFERRED = "transferred"
    TAKEN = "taken"  # the assignee took it: "assign to me" from the pool, or a supervisor's take-over
    RETURNED = "returned"  # its assignee was deactivated: back in the branch's pool (assignee None)


class ConversationAssigned(Reassignment):
    NAME: ClassVar[str] = "conversation.assigned"

    reason: AssignmentReason
    actor_operator_id: int | None = None


class ConversationEscalated(Reassignment):
    """The assignee did not open it in time: it moved on (to the next operator, or the pool)."""

    NAME: ClassVar[str] = "conversation.escalated"


class ConversationStatusChanged(ConversationEvent):
    NAME: ClassVar[str] = "conversation.status_changed"
    AUDIENCE: ClassVar[Audience] = Audience.CONVERSATION

    status: ConversationStatus
    previous_status: ConversationStatus


class ConversationChange(StrEnum):
    PRIORITY = "priority"
    LABELS = "labels"
    SNOOZE = "snooze"  # snoozed, or awake again by someone's doing: lists check the row again
    WOKEN = "woken"  # its snooze's time came: back in the lists, its assignee told as of a new message


class ConversationUpdated(ConversationEvent):
    """Something about the conversation changed that lists show (not its placement or status)."""

    NAME: ClassVar[str] = "conversation.updated"

    change: ConversationChange


class ContactUpdated(ConversationEvent):
    """A contact's name, phone, e-mail, region or attributes changed; announced in the contact's
    latest conversation (where it is shown)."""

    NAME: ClassVar[str] = "contact.updated"

    contact_id: int
    fields: list[str]


class VisitorContextUpdated(ConversationEvent):
    """A website visitor moved to another page (or told us who they are): the conversation's
    `visitor_context` changed. Live only: a client that reconnects reads the conversation."""

    NAME: ClassVar[str] = "conversation.visitor_context_updated"
    DURABLE: ClassVar[bool] = False


class ConversationRated(ConversationEvent):
    NAME: ClassVar[str] = "conversation.rated"

    rating: int


class ContactTyping(ConversationEvent):
    NAME: ClassVar[str] = "contact.typing"
    DURABLE: ClassVar[bool] = False


class ContactRead(ConversationEvent):
    NAME: ClassVar[str] = "contact.read"


class ContactReachabilityChanged(ConversationEvent):
    """The contact blocked or restarted the bot. Without a live conversation only supervisors
    hear of it (no one else has a place to show it)."""

    NAME: ClassVar[str] = "contact.reachability_changed"

    conversation_id: int | None  # type: ignore[assignment]
    identity_id: int
    reachable: bool


class OperatorTyping(ConversationEvent):
    """Colleagues hear of every keystroke burst (notes included); the website visitor hears of
    replies only, throttled (`services.typing_indicator`), as a separate event for them alone."""

    NAME: ClassVar[str] = "operator.typing"
    DURABLE: ClassVar[bool] = False

    operator_id: int
    for_visitor: bool = False

    def scope(self) -> EventScope:
        if self.for_visitor:
            return EventScope(Audience.VISITOR, place=Placement(self.conversation_id, self.branch_id, self.assignee_id))
        return super().scope()


class OperatorPresence(ConversationEvent):
    """An operator opened or left the conversation, so two people do not answer at once."""

    NAME: ClassVar[str] = "operator.presence"
    DURABLE: ClassVar[bool] = False

    operator_id: int
    viewing: bool


class OperatorStatusChanged(Event):
    NAME: ClassVar[str] = "operator.status_changed"
    AUDIENCE: ClassVar[Audience] = Audience.TEAM

    operator_id: int
    branch_id: int | None
    status: OperatorStatus
    previous_status: OperatorStatus

    def scope(self) -> EventScope:
        return EventScope(self.AUDIENCE, operator_id=self.operator_id, branch_id=self.branch_id)


class EscalationExhausted(ConversationEvent):
    """Every online operator of the branch let it time out: a supervisor must act."""

    NAME: ClassVar[str] = "alert.escalation_exhausted"
    AUDIENCE: ClassVar[Audience] = Audience.SUPERVISORS

    timed_out: list[int]


class ConversationActionFailed(ConversationEvent):
    """An action on the conversation did not happen (a transfer to an operator deactivated
    meanwhile, an error): it stays as it was. For the operator who asked, and supervisors."""

    NAME: ClassVar[str] = "conversation.action_failed"
    AUDIENCE: ClassVar[Audience] = Audience.TEAM

    action: str
    operator_id: int | None  # who asked; None: the workflow's own action (supervisors hear of it)
    reason: str = Field(max_length=TEXT_LIMIT)
    refused: bool  # refused for a reason the operator can read, rather than an error

    def scope(self) -> EventScope:
        return EventScope(self.AUDIENCE, operator_id=self.operator_id)


class OutboxParked(Event):
    """A change the workflows must hear of could not be handed to Temporal and was set aside."""

    NAME: ClassVar[str] = "alert.outbox_parked"
    AUDIENCE: ClassVar[Audience] = Audience.SUPERVISORS

    outbox_id: int
    conversation_id: int
    kind: str
    error: str = Field(max_length=TEXT_LIMIT)


class WebhookEndpointPaused(Event):
    """An outgoing-webhook endpoint failed for the whole retry window: its events were set aside
    (dead letters) and it was paused until an admin redelivers or resumes it."""

    NAME: ClassVar[str] = "alert.webhook_endpoint_paused"
    AUDIENCE: ClassVar[Audience] = Audience.SUPERVISORS

    endpoint_id: int
    reason: str = Field(max_length=TEXT_LIMIT)


class ResyncReason(StrEnum):
    GAP_TOO_OLD = "gap_too_old"  # what the client missed is older than the event log keeps
    UNKNOWN_ID = "unknown_id"  # the client's last id was never issued here
    TOO_SLOW = "too_slow"  # the client fell behind the stream and was cut off


class Resync(BaseModel):
    """Control event, sent by the stream itself and never stored: reload what you show; the
    stream goes on from this event's id."""

    model_config = ConfigDict(frozen=True)

    NAME: ClassVar[str] = "resync"

    reason: ResyncReason


EVENTS: tuple[type[Event], ...] = (
    MessageCreated,
    MessageUpdated,
    MessageStatusChanged,
    ConversationCreated,
    ConversationRouted,
    ConversationAssigned,
    ConversationEscalated,
    ConversationStatusChanged,
    ConversationUpdated,
    ConversationRated,
    VisitorContextUpdated,
    ContactTyping,
    ContactUpdated,
    ContactRead,
    ContactReachabilityChanged,
    OperatorTyping,
    OperatorPresence,
    OperatorStatusChanged,
    EscalationExhausted,
    ConversationActionFailed,
    OutboxParked,
    WebhookEndpointPaused,
)
BY_NAME: dict[str, type[Event]] = {event.NAME: event for event in EVENTS}
