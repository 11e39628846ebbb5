"""bitcoin family (mempool payments, wallet script types, gap limit)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 07:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(sa.Column("address_type", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("gap_limit", sa.Integer(), nullable=False, server_default="20"))


def downgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("gap_limit")
        batch.drop_column("address_type")
