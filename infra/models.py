"""SQLAlchemy 2 models: the store of record. The cabinet reads only these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text as sql,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from domain.contracts import (
    DISPLAY_NAME_MAX,
    FILE_NAME_MAX,
    MIME_TYPE_MAX,
    PHONE_MAX,
    PROVIDER_ID_MAX,
    REGION_MAX,
    USERNAME_MAX,
)
from domain.enums import (
    ChannelKind,
    ConversationStatus,
    DeliveryStatus,
    ErrorClass,
    Interface,
    MessageDirection,
    MessageFormat,
    MessageKind,
    OperatorRole,
    OperatorStatus,
    PhoneSource,
    SenderKind,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _enum(cls: type, name: str) -> Enum:
    # Store the enum *values* ("online"), not member names, as a native PG enum.
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB,
    }


LIVE_SQL = "status IN ('open', 'pending')"
PHONE_DIGITS = r"regexp_replace(phone, '\D', '', 'g')"
# the "waiting since" sort's key (Conversation.waiting_since): the unanswered customer message's
# time; after every waiting conversation (a far future: asyncpg reads 'infinity' back as a naive
# time), those with nothing waiting
WAITING_SINCE_SQL = (
    "COALESCE(CASE WHEN last_in_at IS NOT NULL AND status IN ('open', 'pending') "
    "AND (last_out_at IS NULL OR last_in_at > last_out_at) THEN last_in_at END, '9999-12-31 00:00+00')"
)


def _trigram(name: str, column: str) -> Index:
    """A trigram index: what answers a substring search (ILIKE '%term%') without a full scan."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})


def _pk() -> Mapped[int]:
    return mapped_column(BigInteger, Identity(always=False), primary_key=True)


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class Branch(Base):
    __tablename__ = "branches"

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    # domain.schedule.WorkingHours as JSON; {} means open around the clock
    working_hours: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    is_default: Mapped[bool] = mapped_column(server_default=sql("false"))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        # at most one default branch
        Index("uq_branches_default", "is_default", unique=True, postgresql_where=sql("is_default")),
    )


class RegionRule(Base):
    __tablename__ = "region_rules"

    id: Mapped[int] = _pk()
    region: Mapped[str] = mapped_column(String(100), unique=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), index=True)


class Operator(Base):
    __tablename__ = "operators"

    id: Mapped[int] = _pk()
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[OperatorRole] = mapped_column(_enum(OperatorRole, "operator_role"))
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"), index=True)
    status: Mapped[OperatorStatus] = mapped_column(
        _enum(OperatorStatus, "operator_status"), server_default=OperatorStatus.OFFLINE.value
    )
    status_changed_at: Mapped[datetime] = _created()
    # round-robin tie breaker: least recently assigned goes first
    last_assigned_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(server_default=sql("true"))
    # cabinet preferences: a domain.enums.Locale and Theme value; an IANA zone, or NULL to
    # follow the branch's timezone (UTC without a branch)
    locale: Mapped[str] = mapped_column(String(8), server_default="ru")
    timezone: Mapped[str | None] = mapped_column(String(64))
    theme: Mapped[str] = mapped_column(String(8), server_default="auto")
    # languages the operator answers in (Locale-like codes: "ru", "en", ...)
    languages: Mapped[list[str]] = mapped_column(JSONB, server_default=sql("'[]'::jsonb"))
    # cabinet notifications: a domain.enums.NotifyMode value, a sound, and whether they play
    # while the cabinet's tab has the focus too
    notify_mode: Mapped[str] = mapped_column(String(8), server_default="mine")
    notify_sound: Mapped[bool] = mapped_column(server_default=sql("true"))
    notify_when_focused: Mapped[bool] = mapped_column(server_default=sql("false"))
    # the last moment a cabinet stream (an open tab) of theirs was seen by an api process;
    # services/presence.py takes them offline once it is older than the cabinet's setting
    last_seen_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("uq_operators_email", func.lower(sql("email")), unique=True),)


class CabinetSettings(Base):
    """Settings of the whole cabinet an admin changes in its pages: one row (id 1)."""

    __tablename__ = "cabinet_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default="1")
    # an operator with no cabinet tab open this long goes offline; 0: never
    offline_after_minutes: Mapped[int] = mapped_column(Integer, server_default="5")

    __table_args__ = (
        CheckConstraint("id = 1", name="one_row"),
        CheckConstraint("offline_after_minutes BETWEEN 0 AND 1440", name="offline_after_minutes"),
    )


class PasswordLink(Base):
    """A one-time link that lets an operator set their password: an invitation or a reset.
    Stored by digest, like sessions; used once, then kept for the audit trail."""

    __tablename__ = "password_links"

    id: Mapped[int] = _pk()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))  # invite | reset
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class LoginThrottle(Base):
    """Failed sign-ins per account (hashed as typed) or client address, shared by every api
    replica; see infra/login_throttle.py."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(index=True)
    blocked_until: Mapped[datetime]


class WebSession(Base):
    """Server-side cabinet sessions: revocable, and the CSRF token lives with the session."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = _pk()
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime]
    # what the operator's session list shows to tell their devices apart
    user_agent: Mapped[str | None] = mapped_column(String(300))
    address: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    """An integrator's REST API token (infra/security.py makes and digests it; only the digest
    is stored, the token is shown once). It sees the conversations of `branch_ids`, or of every
    branch when NULL; a branch deleted later leaves an id that matches nothing."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # the token's first characters, so an admin can tell which token a leaked one is
    hint: Mapped[str] = mapped_column(String(16))
    branch_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    can_write: Mapped[bool] = mapped_column(server_default=sql("false"))
    created_by_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    # written at most once a minute per token (services/api_tokens.py)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """An API request's Idempotency-Key and the answer it got (infra/idempotency.py). The row is
    inserted by the request that claims the key and committed with that request's effect and
    answer, so it is never seen half-done."""

    __tablename__ = "api_idempotency_keys"

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # SHA-256 of the method, path and body: the same key with another request is refused
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[int | None] = mapped_column(SmallInteger)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Inbox(Base):
    __tablename__ = "inboxes"

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind, "channel_kind"))
    # Fernet-encrypted JSON (bot token, webhook secret): never in a log or a page
    credentials_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    # offline_text, auto_reply, rating_mode, allowed_domains, escalation_minutes, ...
    settings: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    # channel-specific polling position (Telegram offset, MAX marker)
    poll_cursor: Mapped[str | None] = mapped_column(String(200))
    # webhook mode: where the provider delivers; NULL = long polling
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_checked_at: Mapped[datetime | None]
    # the provider's last delivery error (Telegram last_error_message), shown to admins
    webhook_error: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(server_default=sql("true"))
    # where a contact no region rule places goes (before the default branch)
    default_branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    # the bot as its provider names it (getMe / GET /me), shown to admins
    bot_name: Mapped[str | None] = mapped_column(String(200))
    bot_username: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = _pk()
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_MAX), server_default="")
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))
    phone_source: Mapped[PhoneSource | None] = mapped_column(_enum(PhoneSource, "phone_source"))
    email: Mapped[str | None] = mapped_column(String(320))
    region: Mapped[str | None] = mapped_column(String(REGION_MAX))
    attributes: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()
    anonymized_at: Mapped[datetime | None]

    __table_args__ = (
        _trigram("ix_contacts_display_name_trgm", "display_name"),
        # a phone is searched by its digits, however it was written
        Index("ix_contacts_phone_digits_trgm", sql(f"({PHONE_DIGITS}) gin_trgm_ops"), postgresql_using="gin"),
    )


class ContactIdentity(Base):
    """One contact as one channel knows them (a Telegram or MAX user is the same person to every
    bot of the channel); the unique key makes find-or-create race-safe."""

    __tablename__ = "contact_identities"

    id: Mapped[int] = _pk()
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[ChannelKind] = mapped_column(_enum(ChannelKind, "channel_kind"))
    provider_user_id: Mapped[str] = mapped_column(String(PROVIDER_ID_MAX))
    username: Mapped[str | None] = mapped_column(String(USERNAME_MAX))
    created_at: Mapped[datetime] = _created()
    # loaded only where asked for (selectinload): the inbound path never needs them all
    chats: Mapped[list[ContactChat]] = relationship(lazy="raise", order_by="ContactChat.inbox_id")

    __table_args__ = (
        UniqueConstraint("channel", "provider_user_id"),
        _trigram("ix_contact_identities_username_trgm", "username"),
    )


class ContactChat(Base):
    """An identity's private chat with one inbox's bot: where that inbox's conversations with
    them are answered, and whether they can be. Each bot has a dialog of its own with a user
    (MAX gives each its own chat id) and a user blocks one bot, not every bot of a channel;
    the row outlives conversations, so a stop that came with no conversation open still holds
    for the next one."""

    __tablename__ = "contact_chats"

    identity_id: Mapped[int] = mapped_column(ForeignKey("contact_identities.id", ondelete="CASCADE"), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), primary_key=True)
    # taken from every event of the dialog, so it follows the provider if the chat changes
    provider_chat_id: Mapped[str] = mapped_column(String(PROVIDER_ID_MAX))
    reachable: Mapped[bool] = mapped_column(server_default=sql("true"))
    unreachable_reason: Mapped[str | None] = mapped_column(String(500))
    # the provider's time of the last start or stop applied: one from before it, delivered
    # late or again, changes nothing
    lifecycle_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = _pk()
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="RESTRICT"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("contact_identities.id", ondelete="CASCADE"))
    interface: Mapped[Interface] = mapped_column(_enum(Interface, "interface"), server_default="bot")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    status: Mapped[ConversationStatus] = mapped_column(
        _enum(ConversationStatus, "conversation_status"), server_default="open"
    )
    priority: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    assigned_at: Mapped[datetime | None]
    # the assignee opened it: the escalation timer stops for good
    opened_at: Mapped[datetime | None]
    last_in_at: Mapped[datetime | None]
    last_out_at: Mapped[datetime | None]
    last_activity_at: Mapped[datetime] = _created()
    # kept by PostgreSQL, so the inbox's "waiting since" sort reads an indexed column
    waiting_since: Mapped[datetime] = mapped_column(Computed(WAITING_SINCE_SQL, persisted=True))
    # snoozed: out of Mine and Unassigned until snoozed_until, or (snoozed_until NULL) until the
    # customer's next message; the conversation's workflow wakes it (services.snoozes)
    snoozed_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None]
    # the last workflow action applied (transfer, reopen, alert), by what caused it: a retried
    # activity finds its key here and changes nothing twice
    last_action_key: Mapped[str | None] = mapped_column(String(100))
    # website widget: where the visitor is and came from (services.widget_context.VisitorContext)
    visitor_context: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    created_at: Mapped[datetime] = _created()

    inbox: Mapped[Inbox] = relationship(lazy="raise")
    contact: Mapped[Contact] = relationship(lazy="raise")
    identity: Mapped[ContactIdentity] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint("rating IS NULL OR rating BETWEEN 0 AND 10", name="rating_range"),
        # a conversation lives in its identity's chat with its inbox
        ForeignKeyConstraint(
            ["identity_id", "inbox_id"], ["contact_chats.identity_id", "contact_chats.inbox_id"], ondelete="CASCADE"
        ),
        # one live (not closed) conversation per identity and inbox: the find-or-create key
        Index(
            "uq_conversations_live",
            "inbox_id",
            "identity_id",
            unique=True,
            postgresql_where=sql("status <> 'closed'"),
        ),
        # the inbox list: a branch's conversations by status, newest activity first
        Index("ix_conversations_branch_status_activity", "branch_id", "status", sql("last_activity_at DESC")),
        Index("ix_conversations_assignee_status_activity", "assignee_id", "status", sql("last_activity_at DESC")),
        # lists of every branch, newest activity first (a backward scan), paged by (last_activity_at, id)
        Index("ix_conversations_activity_id", "last_activity_at", "id"),
        # the workspace's live conversations (open, pending: a few percent of the table): its tabs'
        # counts by placement, and the lists of every branch, newest activity first
        Index("ix_conversations_live_placement", "assignee_id", "branch_id", postgresql_where=sql(LIVE_SQL)),
        Index("ix_conversations_live_activity", "last_activity_at", "id", postgresql_where=sql(LIVE_SQL)),
        # the "unanswered" filter: the customer wrote last
        Index(
            "ix_conversations_unanswered",
            "branch_id",
            "last_in_at",
            postgresql_where=sql("status IN ('open', 'pending') AND (last_out_at IS NULL OR last_in_at > last_out_at)"),
        ),
        # the inbox's other sorts (services.conversation_list.Sort), each paged by its key and id
        Index("ix_conversations_created_id", "created_at", "id"),
        Index("ix_conversations_priority_activity_id", "priority", "last_activity_at", "id"),
        Index("ix_conversations_waiting_since_id", "waiting_since", "id"),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = _pk()
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="RESTRICT"))
    direction: Mapped[MessageDirection] = mapped_column(_enum(MessageDirection, "message_direction"))
    sender_kind: Mapped[SenderKind] = mapped_column(_enum(SenderKind, "sender_kind"))
    sender_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    sender_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, server_default="")
    format: Mapped[MessageFormat] = mapped_column(_enum(MessageFormat, "message_format"), server_default="plain")
    kind: Mapped[MessageKind] = mapped_column(_enum(MessageKind, "message_kind"), server_default="text")
    # a button press: the data the button carried (its label is the text)
    button_data: Mapped[str | None] = mapped_column(Text)
    # a private note: staff only, never delivered, never shown to the customer
    is_note: Mapped[bool] = mapped_column(server_default=sql("false"))
    # inbound: the provider's id, unique per inbox (dedup of provider retries)
    provider_message_id: Mapped[str | None] = mapped_column(String(PROVIDER_ID_MAX))
    # outbound: the caller's Idempotency-Key, so a retried send creates one message
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    delivery_status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    error_class: Mapped[ErrorClass | None] = mapped_column(_enum(ErrorClass, "error_class"))
    error: Mapped[str | None] = mapped_column(Text)
    provider_time: Mapped[datetime | None]
    # the provider's time of the edit `text` comes from; every version is a MessageRevision
    edited_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # outbound, website widget: when the visitor's browser received it, and when it was shown to them
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    # outbound: the provider's ids of every part sent (a long text goes out in several)
    sent_provider_ids: Mapped[list[str]] = mapped_column(JSONB, server_default=sql("'[]'::jsonb"))
    # a failed message a supervisor dismissed from the dead-letter list
    discarded_at: Mapped[datetime | None]
    # the request that brought it (a provider's webhook, an operator's or integrator's call):
    # logs, the delivery journal and outgoing webhooks' journal name it
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        UniqueConstraint("inbox_id", "provider_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        # the inbox's search in message texts
        _trigram("ix_messages_text_trgm", "text"),
        # the dead-letter list
        Index(
            "ix_messages_failed",
            "created_at",
            postgresql_where=sql("delivery_status = 'failed' AND discarded_at IS NULL"),
        ),
        # a delivery finds the message before it in the same conversation
        Index(
            "ix_messages_outgoing_pending",
            "conversation_id",
            "id",
            postgresql_where=sql("direction = 'out' AND delivery_status IN ('queued', 'sending')"),
        ),
    )


class MessageRevision(Base):
    """One version of a customer's edited message, at the provider's time: the original (at the
    message's own time) and every edit, in any order they arrived. Written at the first edit,
    so a message never edited has none; `Message.text` is the newest version."""

    __tablename__ = "message_revisions"

    id: Mapped[int] = _pk()
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    provider_time: Mapped[datetime]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("ix_message_revisions_message_id_provider_time", "message_id", "provider_time"),)


class DeliveryAttempt(Base):
    """The integration journal: one row per call to a provider for an outgoing message."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = _pk()
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(30))  # sent | retryable | rate_limited | permanent
    provider_code: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    correlation_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)


class Attachment(Base):
    """File metadata; bytes are content-addressed on disk by sha256 (stored once)."""

    __tablename__ = "attachments"

    id: Mapped[int] = _pk()
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(FILE_NAME_MAX), server_default="")
    mime_type: Mapped[str] = mapped_column(String(MIME_TYPE_MAX), server_default="application/octet-stream")
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # provider reference until the fetch activity has stored the bytes
    provider_ref: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    stored_at: Mapped[datetime | None]
    fetch_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class ReadState(Base):
    """Per-operator read position in a conversation (unread counters, read ticks)."""

    __tablename__ = "read_states"

    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger)
    read_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = _pk()
    actor_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    actor_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="SET NULL"))
    actor_kind: Mapped[str] = mapped_column(String(20))  # domain.enums.ActorKind
    action: Mapped[str] = mapped_column(String(100))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    __table_args__ = (
        # the audit log's filters, newest first by id (its cursor)
        Index("ix_audit_events_actor_id", "actor_operator_id", "id"),
        Index("ix_audit_events_action_id", "action", "id"),
    )


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(String(50))
    colour: Mapped[str] = mapped_column(String(7))  # #rrggbb
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("uq_labels_name", func.lower(sql("name")), unique=True),)


class ConversationLabel(Base):
    __tablename__ = "conversation_labels"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = _created()


class CannedReply(Base):
    """A prepared answer an operator inserts with "/" + its shortcut: global (no branch) or one
    branch's. The text is Markdown-lite with {contact_name} and {operator_name}."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = _pk()
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"))
    shortcut: Mapped[str] = mapped_column(String(50))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()

    __table_args__ = (
        # one shortcut per scope (the global scope is branch 0)
        Index(
            "uq_canned_replies_scope_shortcut",
            func.coalesce(sql("branch_id"), 0),
            func.lower(sql("shortcut")),
            unique=True,
        ),
    )


class WorkerHeartbeat(Base):
    """Each worker process stamps its row every few seconds: the health page's "is anyone
    working the task queue" answer."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)  # host:pid
    task_queue: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime] = mapped_column(index=True)


class OutboxEvent(Base):
    """Transactional outbox: written with the inbound message, drained into Temporal in order."""

    __tablename__ = "outbox_events"

    id: Mapped[int] = _pk()
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=sql("'{}'::jsonb"))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    # of those, the ones Temporal answered with a refusal (not the ones it was unreachable for)
    refusals: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    available_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # set aside after too many refusals (last_error says why): no longer tried, no longer
    # holding its conversation's later rows back, until a supervisor retries it
    parked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("ix_outbox_events_conversation_id_id", "conversation_id", "id"),)


class RateSlot(Base):
    """Shared send schedule per bot and per chat, so every worker process stays under the
    provider's limits: each send reserves the next free slot of its keys (infra/ratelimit.py)."""

    __tablename__ = "rate_slots"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    next_at: Mapped[datetime]  # the last slot plus the key's spacing
    # the key's last slots, as many as its limit counts in one window
    recent: Mapped[list[datetime]] = mapped_column(
        ARRAY(DateTime(timezone=True)), server_default=sql("'{}'::timestamptz[]")
    )


class RealtimeEvent(Base):
    """The durable, ordered log of realtime events (domain/events.py), kept for a few hours so a
    client that reconnects gets exactly what it missed.

    A row is inserted with a negative placeholder id; at commit a deferred trigger (see the
    migration) takes a transaction-scoped lock, gives it the next id and NOTIFYs it. Ids are
    therefore in commit order: a client that has seen id N has seen everything committed before.
    """

    __tablename__ = "realtime_events"

    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=sql("(- nextval('realtime_events_pending_id'::regclass))")
    )
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created()


class WebhookEndpoint(Base):
    """An integrator's URL that receives signed events (domain/webhooks.py), for one inbox or
    all. Its queue keeps filling while it is paused: nothing is dropped."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = _pk()
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # NULL: every inbox
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), index=True)
    # Fernet-encrypted JSON {"secrets": [{"secret", "expires_at"}]}: the newest first; during a
    # rotation the previous one signs too until it expires
    secrets_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    paused_at: Mapped[datetime | None]
    pause_reason: Mapped[str | None] = mapped_column(String(500))
    # the receiver as a whole: failing since when, how many rounds in a row, next try
    failing_since: Mapped[datetime | None]
    failing_rounds: Mapped[int] = mapped_column(Integer, server_default="0")
    retry_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()


class WebhookDelivery(Base):
    """One event queued for one endpoint, written by the realtime log's commit trigger in the
    transaction of the change; kept after delivery (for redelivery) until the log's retention."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = _pk()
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)  # realtime_events.id: commit-ordered, stable
    event_type: Mapped[str] = mapped_column(String(64))
    # events of one conversation are delivered in order; others (no conversation) stand alone
    order_key: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created()
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # domain.webhooks.DeliveryState
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    first_failed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_pending", "endpoint_id", "id", postgresql_where=sql("status = 'pending'")),
        Index("ix_webhook_deliveries_created_at", "created_at"),
    )


class WebhookBlocked(Base):
    """A conversation whose head event failed: its later events wait behind it until `until`."""

    __tablename__ = "webhook_blocked"

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), primary_key=True)
    order_key: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    until: Mapped[datetime]


class WebhookAttempt(Base):
    """The integration journal of outgoing webhooks: one row per request sent."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = _pk()
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))  # delivered | failed | dead
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer)
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
    correlation_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now(), index=True)

    __table_args__ = (Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),)


class Bitrix24Connection(Base):
    """Where "Send to B24" creates tasks for an inbox's or a branch's conversations (the inbox's
    wins): the portal's inbound-webhook URL, sealed (its path holds the secret code)."""

    __tablename__ = "bitrix24_connections"

    id: Mapped[int] = _pk()
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), unique=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"), unique=True)
    webhook_url_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    responsible_id: Mapped[int] = mapped_column(Integer)  # the Bitrix24 user the task is for
    deadline_hours: Mapped[int] = mapped_column(Integer, server_default="24")
    created_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("(branch_id IS NULL) <> (inbox_id IS NULL)", name="one_owner"),)


class Bitrix24Task(Base):
    """A task asked for a conversation, one per purpose: its workflow is `b24-task-{id}-{purpose}`."""

    __tablename__ = "bitrix24_tasks"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")  # pending | ready | failed
    task_id: Mapped[str | None] = mapped_column(String(32))
    task_url: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(String(500))
    requested_by_operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class StaffNotificationRule(Base):
    """Who hears in Telegram of new customer messages in a branch: a staff chat (every message,
    the first of a conversation, or while unassigned), or an operator's own chat (only the
    conversations assigned to them). One workflow per rule, `staff-notify-{id}`, reads the
    realtime log from `cursor` on."""

    __tablename__ = "staff_notification_rules"

    id: Mapped[int] = _pk()
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id", ondelete="CASCADE"), index=True)
    mode: Mapped[str] = mapped_column(String(16))  # domain.staff_notifications.Mode
    chat_id: Mapped[str] = mapped_column(String(64))  # the Telegram chat
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    bot_inbox_id: Mapped[int] = mapped_column(ForeignKey("inboxes.id", ondelete="CASCADE"))  # whose bot sends
    cursor: Mapped[int] = mapped_column(BigInteger, server_default="0")  # the last realtime event read
    sent: Mapped[int] = mapped_column(Integer, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()
