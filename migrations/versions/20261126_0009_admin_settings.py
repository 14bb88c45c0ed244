"""admin settings: labels, canned replies, password links (invitations and resets), worker
heartbeats; operators' languages and notification preferences; an inbox's default branch and bot
name; audit log indexes for its filters; a session's user agent and address

Revision ID: 0009_admin_settings
Revises: 0008_chats_per_inbox
Create Date: 2026-11-26 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009_admin_settings"
down_revision: str | None = "0008_chats_per_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("colour", sa.String(length=7), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index("uq_labels_name", "labels", [sa.literal_column("lower(name)")], unique=True)
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("task_queue", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_heartbeats")),
    )
    op.create_index(op.f("ix_worker_heartbeats_beat_at"), "worker_heartbeats", ["beat_at"], unique=False)
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("branch_id", sa.BigInteger(), nullable=True),
        sa.Column("shortcut", sa.String(length=50), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.id"], name=op.f("fk_canned_replies_branch_id_branches"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
    )
    op.create_index(
        "uq_canned_replies_scope_shortcut",
        "canned_replies",
        [sa.literal_column("coalesce(branch_id, 0)"), sa.literal_column("lower(shortcut)")],
        unique=True,
    )
    op.create_table(
        "password_links",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("created_by_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["operators.id"],
            name=op.f("fk_password_links_created_by_id_operators"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"], ["operators.id"], name=op.f("fk_password_links_operator_id_operators"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_links_token_hash")),
    )
    op.create_index(op.f("ix_password_links_operator_id"), "password_links", ["operator_id"], unique=False)
    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("label_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_conversation_labels_label_id_labels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("conversation_id", "label_id", name=op.f("pk_conversation_labels")),
    )
    op.create_index(op.f("ix_conversation_labels_label_id"), "conversation_labels", ["label_id"], unique=False)
    op.create_index("ix_audit_events_action_id", "audit_events", ["action", "id"], unique=False)
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_operator_id", "id"], unique=False)
    op.add_column("inboxes", sa.Column("default_branch_id", sa.BigInteger(), nullable=True))
    op.add_column("inboxes", sa.Column("bot_name", sa.String(length=200), nullable=True))
    op.add_column("inboxes", sa.Column("bot_username", sa.String(length=100), nullable=True))
    op.create_foreign_key(
        op.f("fk_inboxes_default_branch_id_branches"),
        "inboxes",
        "branches",
        ["default_branch_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.add_column(
        "operators",
        sa.Column(
            "languages", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False
        ),
    )
    op.add_column("operators", sa.Column("notify_mode", sa.String(length=8), server_default="mine", nullable=False))
    op.add_column("operators", sa.Column("notify_sound", sa.Boolean(), server_default=sa.text("true"), nullable=False))
    op.add_column(
        "operators", sa.Column("notify_when_focused", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )
    op.add_column("web_sessions", sa.Column("user_agent", sa.String(length=300), nullable=True))
    op.add_column("web_sessions", sa.Column("address", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("web_sessions", "address")
    op.drop_column("web_sessions", "user_agent")
    op.drop_column("operators", "notify_when_focused")
    op.drop_column("operators", "notify_sound")
    op.drop_column("operators", "notify_mode")
    op.drop_column("operators", "languages")
    op.drop_constraint(op.f("fk_inboxes_default_branch_id_branches"), "inboxes", type_="foreignkey")
    op.drop_column("inboxes", "bot_username")
    op.drop_column("inboxes", "bot_name")
    op.drop_column("inboxes", "default_branch_id")
    op.drop_index("ix_audit_events_actor_id", table_name="audit_events")
    op.drop_index("ix_audit_events_action_id", table_name="audit_events")
    op.drop_index(op.f("ix_conversation_labels_label_id"), table_name="conversation_labels")
    op.drop_table("conversation_labels")
    op.drop_index(op.f("ix_password_links_operator_id"), table_name="password_links")
    op.drop_table("password_links")
    op.drop_index("uq_canned_replies_scope_shortcut", table_name="canned_replies")
    op.drop_table("canned_replies")
    op.drop_index(op.f("ix_worker_heartbeats_beat_at"), table_name="worker_heartbeats")
    op.drop_table("worker_heartbeats")
    op.drop_index("uq_labels_name", table_name="labels")
    op.drop_table("labels")
