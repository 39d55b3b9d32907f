"""faq entries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Published FAQ answers, loaded from data/faq on first run or by `donghanh content load`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "faq_entries",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("more", sa.Text(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_faq_entries")),
    )


def downgrade() -> None:
    op.drop_table("faq_entries")
