"""contacts waiting for their erasure, found by index

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23

Every delivery looks for contacts whose erasure can now be completed; without an index
that is a scan of every contact.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_erase_requested_at", "contacts", ["erase_requested_at"])


def downgrade() -> None:
    op.drop_index("ix_contacts_erase_requested_at", table_name="contacts")
