"""operators: locale, timezone and theme for the cabinet

Revision ID: 0004_operator_preferences
Revises: 0003_login_throttles
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_operator_preferences"
down_revision: str | None = "0003_login_throttles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("operators", sa.Column("locale", sa.String(length=8), server_default="ru", nullable=False))
    op.add_column("operators", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("operators", sa.Column("theme", sa.String(length=8), server_default="auto", nullable=False))


def downgrade() -> None:
    op.drop_column("operators", "theme")
    op.drop_column("operators", "timezone")
    op.drop_column("operators", "locale")
