"""outgoing webhooks: endpoints, their delivery queue fed by the realtime log's commit trigger,
the delivery journal; messages remember the request that brought them

Revision ID: 0014_outgoing_webhooks
Revises: 0013_api_idempotency_keys
Create Date: 2026-11-27 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014_outgoing_webhooks"
down_revision: str | None = "0013_api_idempotency_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The realtime log's commit trigger (migration 0005) also queues the event for every endpoint
# subscribed to it, with the event's final, commit-ordered id: in the transaction of the change,
# so a webhook event exists exactly when the change does. Without endpoints it is one look at an
# empty table per event.
COMMIT_FUNCTION = """
CREATE OR REPLACE FUNCTION realtime_event_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    final_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7264653901);
    final_id := nextval('realtime_events_id');
    UPDATE realtime_events SET id = final_id WHERE id = NEW.id;
    PERFORM pg_notify('switchboard_events', final_id::text || ' ' || NEW.type || ' ' || NEW.payload::text);
    INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, order_key, payload, created_at)
    SELECT e.id, final_id, NEW.type, COALESCE((NEW.payload->>'conversation_id')::bigint, -final_id),
           NEW.payload, NEW.created_at
    FROM webhook_endpoints e
    WHERE NEW.type = ANY (e.events)
      AND (e.inbox_id IS NULL OR e.inbox_id = (NEW.payload->>'inbox_id')::bigint);
    RETURN NULL;
END
$$
"""
PREVIOUS_COMMIT_FUNCTION = """
CREATE OR REPLACE FUNCTION realtime_event_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    final_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7264653901);
    final_id := nextval('realtime_events_id');
    UPDATE realtime_events SET id = final_id WHERE id = NEW.id;
    PERFORM pg_notify('switchboard_events', final_id::text || ' ' || NEW.type || ' ' || NEW.payload::text);
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("correlation_id", sa.String(length=100), nullable=True))
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("secrets_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pause_reason", sa.String(length=500), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_rounds", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_webhook_endpoints_inbox_id_inboxes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_inbox_id"), "webhook_endpoints", ["inbox_id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("order_key", sa.BigInteger(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id_event_id")),
    )
    op.create_index(
        "ix_webhook_deliveries_pending",
        "webhook_deliveries",
        ["endpoint_id", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_webhook_deliveries_created_at", "webhook_deliveries", ["created_at"], unique=False)
    op.create_table(
        "webhook_blocked",
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("order_key", sa.BigInteger(), nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_blocked_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "order_key", name=op.f("pk_webhook_blocked")),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.String(length=500), nullable=True),
        sa.Column("correlation_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_attempts_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(op.f("ix_webhook_attempts_created_at"), "webhook_attempts", ["created_at"], unique=False)
    op.create_index("ix_webhook_attempts_endpoint_id_id", "webhook_attempts", ["endpoint_id", "id"], unique=False)
    op.execute(COMMIT_FUNCTION)


def downgrade() -> None:
    op.execute(PREVIOUS_COMMIT_FUNCTION)
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_blocked")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_column("messages", "correlation_id")
