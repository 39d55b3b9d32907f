"""messages by the message they reply to, for deletes that do not scan the table

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

``messages.reply_to_id`` references ``messages.id`` (ON DELETE SET NULL): deleting a
message makes the database look for the replies to it. Without an index that is a scan
of the whole table per deleted message, so the retention purge's batch of 500 messages
(and an erasure) would hold the write lock for a minute on a table of 200,000 messages;
with it, milliseconds.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_messages_reply_to_id", "messages", ["reply_to_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_reply_to_id", table_name="messages")
