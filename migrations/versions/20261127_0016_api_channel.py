"""the API channel: a channel kind for inboxes an integrator's system writes into

Revision ID: 0016_api_channel
Revises: 0015_b24_staff_notify
Create Date: 2026-11-27 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_api_channel"
down_revision: str | None = "0015_b24_staff_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TYPE channel_kind ADD VALUE IF NOT EXISTS 'api'")


def downgrade() -> None:
    # PostgreSQL cannot drop one value of an enum type; an unused 'api' is harmless
    pass
