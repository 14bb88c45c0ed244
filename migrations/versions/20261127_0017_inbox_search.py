"""inbox search and counts: trigram indexes on contact names, phones (digits), usernames and
message texts; partial indexes on the live conversations the workspace counts and lists

Revision ID: 0017_inbox_search
Revises: 0016_api_channel
Create Date: 2026-11-27 16:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017_inbox_search"
down_revision: str | None = "0016_api_channel"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, column): the inbox's search is a substring match (ILIKE '%term%'), which only a
# trigram index answers without reading every row
INDEXES = (
    ("ix_contacts_display_name_trgm", "contacts", "display_name"),
    ("ix_contacts_phone_digits_trgm", "contacts", r"(regexp_replace(phone, '\D', '', 'g'))"),
    ("ix_contact_identities_username_trgm", "contact_identities", "username"),
    ("ix_messages_text_trgm", "messages", "text"),
)


# open and pending conversations: a few percent of a table that keeps years of history
LIVE = "status IN ('open', 'pending')"


def upgrade() -> None:
    # pg_trgm is a trusted extension: the database's owner may create it
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, table, column in INDEXES:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ({column} gin_trgm_ops)")
    op.create_index(
        "ix_conversations_live_placement", "conversations", ["assignee_id", "branch_id"], postgresql_where=LIVE
    )
    op.create_index(
        "ix_conversations_live_activity", "conversations", ["last_activity_at", "id"], postgresql_where=LIVE
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_live_activity", table_name="conversations")
    op.drop_index("ix_conversations_live_placement", table_name="conversations")
    for name, _, _ in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
