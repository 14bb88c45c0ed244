"""presence: when an operator last had a cabinet tab open, and the cabinet-wide setting after how
many minutes without one they are taken offline

Revision ID: 0022_presence
Revises: 0020_sorts_snooze
Create Date: 2026-11-27 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_presence"
down_revision: str | None = "0020_sorts_snooze"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # now() for everyone already there: nobody is taken offline before their tabs stamp again
    op.add_column(
        "operators",
        sa.Column("last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    op.create_table(
        "cabinet_settings",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("offline_after_minutes", sa.Integer(), server_default=sa.text("5"), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_cabinet_settings_one_row")),
        sa.CheckConstraint(
            "offline_after_minutes BETWEEN 0 AND 1440", name=op.f("ck_cabinet_settings_offline_after_minutes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cabinet_settings")),
    )
    op.execute("INSERT INTO cabinet_settings (id) VALUES (1)")


def downgrade() -> None:
    op.drop_table("cabinet_settings")
    op.drop_column("operators", "last_seen_at")
