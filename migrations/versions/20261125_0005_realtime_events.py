"""realtime events: the durable, commit-ordered event log

Revision ID: 0005_realtime_events
Revises: 0004_operator_preferences
Create Date: 2026-11-25 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_realtime_events"
down_revision: str | None = "0004_operator_preferences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# At commit, not at insert: a sequence value taken at insert is not commit-ordered (a lower id
# can commit after a higher one, and a client resuming after the higher one would miss it).
# Holding a transaction-scoped lock from here until the commit is done means the next writer
# takes its id only after this commit is visible. PostgreSQL already serialises the commits of
# notifying transactions (to keep NOTIFY in commit order), so the lock adds little.
# The channel and the lock key are infra/event_log.py's CHANNEL and COMMIT_LOCK.
COMMIT_FUNCTION = """
CREATE FUNCTION realtime_event_commit() RETURNS trigger LANGUAGE plpgsql AS $$
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
COMMIT_TRIGGER = """
CREATE CONSTRAINT TRIGGER realtime_event_commit AFTER INSERT ON realtime_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION realtime_event_commit();
"""


def upgrade() -> None:
    op.execute("CREATE SEQUENCE realtime_events_pending_id")
    op.execute("CREATE SEQUENCE realtime_events_id")
    op.create_table(
        "realtime_events",
        sa.Column(
            "id",
            sa.BigInteger(),
            server_default=sa.text("(- nextval('realtime_events_pending_id'::regclass))"),
            nullable=False,
        ),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_realtime_events")),
    )
    op.execute("ALTER SEQUENCE realtime_events_pending_id OWNED BY realtime_events.id")
    op.execute("ALTER SEQUENCE realtime_events_id OWNED BY realtime_events.id")
    op.execute(COMMIT_FUNCTION)
    op.execute(COMMIT_TRIGGER)


def downgrade() -> None:
    op.drop_table("realtime_events")  # drops the trigger and the owned sequences with it
    op.execute("DROP FUNCTION realtime_event_commit()")
