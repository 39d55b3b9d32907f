"""rotating channel credentials and admin alerts

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Zalo OA's access and refresh tokens rotate: the current pair is kept encrypted, with
its expiry and a refresh lease. Alerts record what admins must act on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_credentials",
        sa.Column("channel", sa.String(length=32), primary_key=True),
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seeded_from", sa.String(length=64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "system_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_system_alerts_created_at", "system_alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_system_alerts_created_at", table_name="system_alerts")
    op.drop_table("system_alerts")
    op.drop_table("channel_credentials")
