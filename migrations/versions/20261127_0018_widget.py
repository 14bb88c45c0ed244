"""the website widget: when the visitor's browser got and showed our messages, and the visitor's
context (page, referrer, UTM, device) stored with the conversation

Revision ID: 0018_widget
Revises: 0017_inbox_search
Create Date: 2026-11-27 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018_widget"
down_revision: str | None = "0017_inbox_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "conversations",
        sa.Column("visitor_context", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("conversations", "visitor_context")
    op.drop_column("messages", "read_at")
    op.drop_column("messages", "delivered_at")
