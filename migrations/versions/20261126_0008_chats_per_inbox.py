"""chats per inbox: an identity's chat and reachability per inbox (contact_chats); button
presses and edit history of messages; where a contact's phone came from

Revision ID: 0008_chats_per_inbox
Revises: 0007_engine_hardening
Create Date: 2026-11-26 09:00:00

Existing rows: every (identity, inbox) a conversation joins gets a chat row with the identity's
chat id and reachability. A Telegram chat id that is a group's (negative) becomes the user's
private chat (Telegram's private chat id is the user id): group messages are no longer served,
and replies to such a contact went to the group. An identity without any conversation gets a
row only where its channel has a single inbox (otherwise no one knows which bot it was);
without one its next event makes it. Stored button presses (provider ids `callback:...`)
become kind `button`, their text their data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_chats_per_inbox"
down_revision: str | None = "0007_engine_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_KIND = postgresql.ENUM("text", "button", name="message_kind", create_type=False)
PHONE_SOURCE = postgresql.ENUM("customer", "operator", name="phone_source", create_type=False)

_CHAT_OF_IDENTITY = """
    CASE WHEN i.channel = 'telegram' AND i.provider_chat_id LIKE '-%' THEN i.provider_user_id
         ELSE i.provider_chat_id END
"""


def upgrade() -> None:
    MESSAGE_KIND.create(op.get_bind())
    PHONE_SOURCE.create(op.get_bind())
    op.add_column("contacts", sa.Column("phone_source", PHONE_SOURCE, nullable=True))

    op.create_table(
        "contact_chats",
        sa.Column("identity_id", sa.BigInteger(), nullable=False),
        sa.Column("inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_chat_id", sa.String(length=200), nullable=False),
        sa.Column("reachable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("unreachable_reason", sa.String(length=500), nullable=True),
        sa.Column("lifecycle_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["contact_identities.id"],
            name=op.f("fk_contact_chats_identity_id_contact_identities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_contact_chats_inbox_id_inboxes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("identity_id", "inbox_id", name=op.f("pk_contact_chats")),
    )
    op.execute(
        f"""
        INSERT INTO contact_chats (identity_id, inbox_id, provider_chat_id, reachable, unreachable_reason)
        SELECT DISTINCT i.id, c.inbox_id, {_CHAT_OF_IDENTITY}, i.reachable, i.unreachable_reason
        FROM contact_identities i JOIN conversations c ON c.identity_id = i.id
        """
    )
    op.execute(
        f"""
        INSERT INTO contact_chats (identity_id, inbox_id, provider_chat_id, reachable, unreachable_reason)
        SELECT i.id, only_inbox.id, {_CHAT_OF_IDENTITY}, i.reachable, i.unreachable_reason
        FROM contact_identities i
        JOIN (SELECT channel, min(id) AS id FROM inboxes GROUP BY channel HAVING count(*) = 1) only_inbox
          ON only_inbox.channel = i.channel
        WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.identity_id = i.id)
        """
    )
    op.create_foreign_key(
        op.f("fk_conversations_identity_id_contact_chats"),
        "conversations",
        "contact_chats",
        ["identity_id", "inbox_id"],
        ["identity_id", "inbox_id"],
        ondelete="CASCADE",
    )
    op.drop_column("contact_identities", "unreachable_reason")
    op.drop_column("contact_identities", "reachable")
    op.drop_column("contact_identities", "provider_chat_id")

    op.add_column("messages", sa.Column("kind", MESSAGE_KIND, server_default="text", nullable=False))
    op.add_column("messages", sa.Column("button_data", sa.Text(), nullable=True))
    op.execute(
        "UPDATE messages SET kind = 'button', button_data = text "
        "WHERE direction = 'in' AND provider_message_id LIKE 'callback:%'"
    )
    op.create_table(
        "message_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("provider_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_message_revisions_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_revisions")),
    )
    op.create_index(
        "ix_message_revisions_message_id_provider_time", "message_revisions", ["message_id", "provider_time"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_revisions_message_id_provider_time", table_name="message_revisions")
    op.drop_table("message_revisions")
    op.drop_column("messages", "button_data")
    op.drop_column("messages", "kind")

    # one chat per identity again: the one with its lowest inbox id (a user's id where none)
    op.add_column("contact_identities", sa.Column("provider_chat_id", sa.String(length=200), nullable=True))
    op.add_column(
        "contact_identities", sa.Column("reachable", sa.Boolean(), server_default=sa.text("true"), nullable=False)
    )
    op.add_column("contact_identities", sa.Column("unreachable_reason", sa.String(length=500), nullable=True))
    op.execute(
        """
        UPDATE contact_identities i
        SET provider_chat_id = first.provider_chat_id, reachable = first.reachable,
            unreachable_reason = first.unreachable_reason
        FROM (SELECT DISTINCT ON (identity_id) * FROM contact_chats ORDER BY identity_id, inbox_id) first
        WHERE first.identity_id = i.id
        """
    )
    op.execute("UPDATE contact_identities SET provider_chat_id = provider_user_id WHERE provider_chat_id IS NULL")
    op.alter_column("contact_identities", "provider_chat_id", nullable=False)
    op.drop_constraint(op.f("fk_conversations_identity_id_contact_chats"), "conversations", type_="foreignkey")
    op.drop_table("contact_chats")

    op.drop_column("contacts", "phone_source")
    PHONE_SOURCE.drop(op.get_bind())
    MESSAGE_KIND.drop(op.get_bind())
