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
    # Mempool sightings: a payment without a block yet; coinbase outputs wait for maturity.
    with op.batch_alter_table("payments") as batch:
        batch.alter_column("block_number", existing_type=sa.BigInteger(), nullable=True)
        batch.alter_column("block_hash", existing_type=sa.String(length=80), nullable=True)
        batch.add_column(
            sa.Column("coinbase", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Mempool-only payments have no block to keep; they are seen again once mined.
    op.execute("DELETE FROM payments WHERE block_number IS NULL")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("coinbase")
        batch.alter_column("block_hash", existing_type=sa.String(length=80), nullable=False)
        batch.alter_column("block_number", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("gap_limit")
        batch.drop_column("address_type")
