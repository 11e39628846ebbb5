"""drop ix_invoices_address: the unique (network, address) index serves the address search

Every invoice insert paid for a second index on a random key (one more cold leaf page per
insert at scale), while the dashboard search now looks addresses up through
uq_invoices_network_address over the merchant's networks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 02:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_invoices_address", table_name="invoices")


def downgrade() -> None:
    op.create_index("ix_invoices_address", "invoices", ["address"], unique=False)
