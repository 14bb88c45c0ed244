"""api callers: replies sent and actions audited with an integrator's token

Revision ID: 0011_api_callers
Revises: 0010_api_tokens
Create Date: 2026-11-26 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_api_callers"
down_revision: str | None = "0010_api_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TYPE sender_kind ADD VALUE 'integration'")
    op.add_column("messages", sa.Column("sender_token_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_messages_sender_token_id_api_tokens"),
        "messages",
        "api_tokens",
        ["sender_token_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column("audit_events", sa.Column("actor_token_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_audit_events_actor_token_id_api_tokens"),
        "audit_events",
        "api_tokens",
        ["actor_token_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_audit_events_actor_token_id_api_tokens"), "audit_events", type_="foreignkey")
    op.drop_column("audit_events", "actor_token_id")
    op.drop_constraint(op.f("fk_messages_sender_token_id_api_tokens"), "messages", type_="foreignkey")
    op.drop_column("messages", "sender_token_id")
    # PostgreSQL cannot drop an enum value: the type is made again without it, and what the API
    # sent is kept as the system's
    op.execute("UPDATE messages SET sender_kind = 'system' WHERE sender_kind = 'integration'")
    op.execute("ALTER TYPE sender_kind RENAME TO sender_kind_old")
    op.execute("CREATE TYPE sender_kind AS ENUM ('contact', 'operator', 'system')")
    op.execute("ALTER TABLE messages ALTER COLUMN sender_kind TYPE sender_kind USING sender_kind::text::sender_kind")
    op.execute("DROP TYPE sender_kind_old")
