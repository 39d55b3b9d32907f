"""content editing: versions, review, retraining, missed messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

FAQ topics and directory services become versioned content (draft -> published, every
published version kept); the published-only ``faq_entries`` table goes (its rows came
from ``data/faq`` and are seeded again from there, with their training examples). Staff
gain the reviewer right; retraining runs, examples added from the missed-messages
queue and the queue itself get their tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

STAFF_FK = "staff_users.id"


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(
            sa.Column("reviewer", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "content_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("edited_by", sa.Integer(), sa.ForeignKey(STAFF_FK, ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.Integer(), sa.ForeignKey(STAFF_FK, ondelete="SET NULL")),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.UniqueConstraint("kind", "key", "number", name="uq_content_versions_kind"),
    )
    op.create_index("ix_content_versions_kind_state", "content_versions", ["kind", "state"])
    op.create_table(
        "content_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "nlu_examples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("intent", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("added_by", sa.Integer(), sa.ForeignKey(STAFF_FK, ondelete="SET NULL")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_nlu_examples_intent", "nlu_examples", ["intent"])
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("data_hash", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.Integer(), sa.ForeignKey(STAFF_FK, ondelete="SET NULL")),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_training_runs_data_hash", "training_runs", ["data_hash"])
    op.create_table(
        "missed_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "contact_id",
            sa.Integer(),
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=24), nullable=False),
        sa.Column("masked_text_enc", sa.Text(), nullable=False),
        sa.Column("guessed_intent", sa.String(length=128), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assigned_intent", sa.String(length=128), nullable=True),
        sa.Column("handled_by", sa.Integer(), sa.ForeignKey(STAFF_FK, ondelete="SET NULL")),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_missed_messages_status", "missed_messages", ["status"])
    op.create_index("ix_missed_messages_created_at", "missed_messages", ["created_at"])
    op.drop_table("faq_entries")
    # the numbers read events by type and period
    op.create_index(
        "ix_conversation_events_type_created", "conversation_events", ["type", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_events_type_created", table_name="conversation_events")
    op.create_table(
        "faq_entries",
        sa.Column("key", sa.String(length=100), primary_key=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("more", sa.Text(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    for table in ("missed_messages", "training_runs", "nlu_examples", "content_revision"):
        op.drop_table(table)
    op.drop_index("ix_content_versions_kind_state", table_name="content_versions")
    op.drop_table("content_versions")
    with op.batch_alter_table("staff_users") as batch:
        batch.drop_column("reviewer")
