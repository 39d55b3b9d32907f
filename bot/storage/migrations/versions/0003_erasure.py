"""erasure

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

"Xóa dữ liệu": contacts remember when erasure was asked (the contact goes once the
confirmation is delivered), and anonymous counts outlive the erased rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("erase_requested_at", sa.DateTime(timezone=True)))
    op.create_table(
        "anonymous_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel", "metric", name=op.f("pk_anonymous_counts")),
    )


def downgrade() -> None:
    op.drop_table("anonymous_counts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("erase_requested_at")
