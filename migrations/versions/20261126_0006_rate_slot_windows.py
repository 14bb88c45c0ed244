"""rate slots remember each key's last slots (a sliding window as providers count it)

Revision ID: 0006_rate_slot_windows
Revises: 0005_realtime_events
Create Date: 2026-11-23 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_rate_slot_windows"
down_revision: str | None = "0005_realtime_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rate_slots",
        sa.Column(
            "recent",
            postgresql.ARRAY(sa.DateTime(timezone=True)),
            server_default=sa.text("'{}'::timestamptz[]"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("rate_slots", "recent")
