"""Bitrix24 connections and tasks; staff notification rules

Revision ID: 0015_b24_staff_notify
Revises: 0014_outgoing_webhooks
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_b24_staff_notify"
down_revision: str | None = "0014_outgoing_webhooks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bitrix24_connections",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("branch_id", sa.BigInteger(), nullable=True),
        sa.Column("inbox_id", sa.BigInteger(), nullable=True),
        sa.Column("webhook_url_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("responsible_id", sa.Integer(), nullable=False),
        sa.Column("deadline_hours", sa.Integer(), server_default="24", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("(branch_id IS NULL) <> (inbox_id IS NULL)", name=op.f("ck_bitrix24_connections_one_owner")),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["branches.id"], name=op.f("fk_bitrix24_connections_branch_id_branches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inboxes.id"], name=op.f("fk_bitrix24_connections_inbox_id_inboxes"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bitrix24_connections")),
        sa.UniqueConstraint("branch_id", name=op.f("uq_bitrix24_connections_branch_id")),
        sa.UniqueConstraint("inbox_id", name=op.f("uq_bitrix24_connections_inbox_id")),
    )
    op.create_table(
        "bitrix24_tasks",
        sa.Column("conversation_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("task_id", sa.String(length=32), nullable=True),
        sa.Column("task_url", sa.String(length=500), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("requested_by_operator_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_bitrix24_tasks_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_operator_id"],
            ["operators.id"],
            name=op.f("fk_bitrix24_tasks_requested_by_operator_id_operators"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "purpose", name=op.f("pk_bitrix24_tasks")),
    )
    op.create_table(
        "staff_notification_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("branch_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=True),
        sa.Column("bot_inbox_id", sa.BigInteger(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_staff_notification_rules_branch_id_branches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["bot_inbox_id"],
            ["inboxes.id"],
            name=op.f("fk_staff_notification_rules_bot_inbox_id_inboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_staff_notification_rules_operator_id_operators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_notification_rules")),
    )
    op.create_index(
        op.f("ix_staff_notification_rules_branch_id"), "staff_notification_rules", ["branch_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("staff_notification_rules")
    op.drop_table("bitrix24_tasks")
    op.drop_table("bitrix24_connections")
