"""inbox sorts and snoozes: conversations.waiting_since (generated), an index per sort of the
inbox (created, priority, waiting since), each ending in the id its cursor pages by; the snooze's
columns

Revision ID: 0020_sorts_snooze
Revises: 0018_widget
Create Date: 2026-11-27 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_sorts_snooze"
down_revision: str | None = "0018_widget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# infra.models.WAITING_SINCE_SQL, as it was when this ran
WAITING_SINCE = (
    "COALESCE(CASE WHEN last_in_at IS NOT NULL AND status IN ('open', 'pending') "
    "AND (last_out_at IS NULL OR last_in_at > last_out_at) THEN last_in_at END, '9999-12-31 00:00+00')"
)


def upgrade() -> None:
    op.create_index("ix_conversations_created_id", "conversations", ["created_at", "id"])
    op.create_index("ix_conversations_priority_activity_id", "conversations", ["priority", "last_activity_at", "id"])
    op.add_column(
        "conversations",
        sa.Column("waiting_since", sa.DateTime(timezone=True), sa.Computed(WAITING_SINCE, persisted=True)),
    )
    op.create_index("ix_conversations_waiting_since_id", "conversations", ["waiting_since", "id"])
    op.add_column("conversations", sa.Column("snoozed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("conversations", sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("conversations", "snoozed_until")
    op.drop_column("conversations", "snoozed_at")
    op.drop_index("ix_conversations_waiting_since_id", table_name="conversations")
    op.drop_column("conversations", "waiting_since")
    op.drop_index("ix_conversations_priority_activity_id", table_name="conversations")
    op.drop_index("ix_conversations_created_id", table_name="conversations")
