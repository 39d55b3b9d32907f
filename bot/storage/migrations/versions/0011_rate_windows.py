"""login attempts per address, counted in the database

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24

The per-address login limit was kept in each worker's memory, so N workers allowed N
times the attempts. One row per address (a keyed hash) and window holds across workers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_rate_windows_window_start", "rate_windows", ["window_start"])


def downgrade() -> None:
    op.drop_index("ix_rate_windows_window_start", table_name="rate_windows")
    op.drop_table("rate_windows")
