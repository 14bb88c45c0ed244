"""message notes: private notes, staff only, never delivered

Revision ID: 0012_message_notes
Revises: 0011_api_callers
Create Date: 2026-11-26 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_message_notes"
down_revision: str | None = "0011_api_callers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("is_note", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    op.drop_column("messages", "is_note")
