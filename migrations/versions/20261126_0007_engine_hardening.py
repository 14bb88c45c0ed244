"""engine hardening: parked outbox rows, idempotent workflow actions, settings changes told to
running conversations

Revision ID: 0007_engine_hardening
Revises: 0006_rate_slot_windows
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_engine_hardening"
down_revision: str | None = "0006_rate_slot_windows"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A change of an inbox's settings or a branch's working hours, by whatever writes it, becomes a
# SETTINGS_CHANGED notice (domain/conversation.py) for each of its not-closed conversations, so
# their workflows read them again at once. The notice only says "read again": the workflow
# applies it whenever it comes, outside the order other notices keep, so this trigger does not
# lock those conversations. Whoever makes a conversation depend on an inbox or branch row reads
# that row FOR SHARE (activities/conversation.py): either this trigger sees the conversation, or
# that reader sees the new settings. The channel is services/outbox.py's WAKE_CHANNEL.
SETTINGS_FUNCTION = """
CREATE FUNCTION conversation_settings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_events (conversation_id, kind, payload)
    SELECT id, 'notice', '{"kind": "settings_changed"}'::jsonb
    FROM conversations
    WHERE status <> 'closed'
      AND CASE TG_TABLE_NAME WHEN 'inboxes' THEN inbox_id = NEW.id ELSE branch_id = NEW.id END
    ORDER BY id;
    IF FOUND THEN
        PERFORM pg_notify('switchboard_outbox', '');
    END IF;
    RETURN NULL;
END
$$
"""
INBOX_TRIGGER = """
CREATE TRIGGER inbox_settings_changed AFTER UPDATE OF settings ON inboxes
    FOR EACH ROW WHEN (OLD.settings IS DISTINCT FROM NEW.settings)
    EXECUTE FUNCTION conversation_settings_changed()
"""
BRANCH_TRIGGER = """
CREATE TRIGGER branch_hours_changed AFTER UPDATE OF working_hours ON branches
    FOR EACH ROW WHEN (OLD.working_hours IS DISTINCT FROM NEW.working_hours)
    EXECUTE FUNCTION conversation_settings_changed()
"""


def upgrade() -> None:
    op.add_column("outbox_events", sa.Column("refusals", sa.Integer(), server_default="0", nullable=False))
    op.add_column("outbox_events", sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("last_action_key", sa.String(length=100), nullable=True))
    op.execute(SETTINGS_FUNCTION)
    op.execute(INBOX_TRIGGER)
    op.execute(BRANCH_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER branch_hours_changed ON branches")
    op.execute("DROP TRIGGER inbox_settings_changed ON inboxes")
    op.execute("DROP FUNCTION conversation_settings_changed()")
    op.drop_column("conversations", "last_action_key")
    op.drop_column("outbox_events", "parked_at")
    op.drop_column("outbox_events", "refusals")
