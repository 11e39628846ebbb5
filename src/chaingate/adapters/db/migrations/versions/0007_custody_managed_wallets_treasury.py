"""custody: managed wallets (the signer holds the key; the gateway its xpub and key ref) and
treasury addresses (hot, tokens_collector, cold) per merchant and network

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 23:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import chaingate.adapters.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = chaingate.adapters.db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("wallets") as batch:
        batch.add_column(
            sa.Column("custody", sa.String(length=16), nullable=False, server_default="watch_only")
        )
        batch.add_column(sa.Column("key_ref", sa.String(length=200), nullable=True))
    op.create_table(
        "treasury_addresses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("custody", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=128), nullable=True),
        sa.Column("account_key", sa.String(length=200), nullable=True),
        sa.Column("key_ref", sa.String(length=200), nullable=True),
        sa.Column("address_type", sa.String(length=16), nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_treasury_addresses_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_treasury_addresses")),
        sa.UniqueConstraint(
            "merchant_id", "network", "role", name=op.f("uq_treasury_addresses_merchant_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("treasury_addresses")
    with op.batch_alter_table("wallets") as batch:
        batch.drop_column("key_ref")
        batch.drop_column("custody")
