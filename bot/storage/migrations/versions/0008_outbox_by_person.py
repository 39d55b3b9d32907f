"""outbox rows by person, for in-order delivery across workers

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

A worker claims a person's reply only when no earlier reply to them is being sent or
waiting out a backoff; this index serves that check.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_contact_channel", "outbox", ["contact_id", "channel", "id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_contact_channel", table_name="outbox")
