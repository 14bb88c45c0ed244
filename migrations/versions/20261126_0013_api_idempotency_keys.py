"""api idempotency keys (each POST's key per token and its first answer, for 72 hours) and the
index conversation lists page on

Revision ID: 0013_api_idempotency_keys
Revises: 0012_message_notes
Create Date: 2026-11-26 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_api_idempotency_keys"
down_revision: str | None = "0012_message_notes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_keys",
        sa.Column("token_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_api_idempotency_keys_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_id", "key", name=op.f("pk_api_idempotency_keys")),
    )
    op.create_index(op.f("ix_api_idempotency_keys_expires_at"), "api_idempotency_keys", ["expires_at"], unique=False)
    op.create_index("ix_conversations_activity_id", "conversations", ["last_activity_at", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_conversations_activity_id", table_name="conversations")
    op.drop_index(op.f("ix_api_idempotency_keys_expires_at"), table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
