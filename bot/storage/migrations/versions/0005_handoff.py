"""handoff to counsellors

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

The queue and consent on conversations, counsellor authorship of messages, staff
availability, private case notes (encrypted) and canned replies.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _conversation_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("consent", sa.String(length=16), nullable=True),
        sa.Column("handoff_message_id", sa.Integer(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiting_updates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("callback_phone_enc", sa.Text(), nullable=True),
        sa.Column("callback_when_enc", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        for column in _conversation_columns():
            batch.add_column(column)
        batch.create_index("ix_conversations_queue", ["state", "queued_at"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("staff_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_messages_staff_id_staff_users",
            "staff_users",
            ["staff_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column("available", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("console_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("text_enc", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_case_notes_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff_users.id"],
            name=op.f("fk_case_notes_staff_id_staff_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notes")),
    )
    op.create_index(op.f("ix_case_notes_conversation_id"), "case_notes", ["conversation_id"])
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_replies")),
        sa.UniqueConstraint("title", name=op.f("uq_canned_replies_title")),
    )


def downgrade() -> None:
    op.drop_table("canned_replies")
    op.drop_index(op.f("ix_case_notes_conversation_id"), table_name="case_notes")
    op.drop_table("case_notes")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("console_seen_at")
        batch.drop_column("available")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_staff_id_staff_users", type_="foreignkey")
        batch.drop_column("staff_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_queue")
        for column in reversed(_conversation_columns()):
            batch.drop_column(column.name)
