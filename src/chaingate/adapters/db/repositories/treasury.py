"""Treasury addresses: a merchant's hot, tokens_collector and cold address per network."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.tables import treasury_addresses
from chaingate.domain.errors import Conflict
from chaingate.domain.models import TreasuryAddress


class TreasuryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, entry: TreasuryAddress) -> None:
        """Raises Conflict when the merchant already has this role on the network (also when a
        concurrent request registered it first)."""
        try:
            await self._conn.execute(treasury_addresses.insert().values(**asdict(entry)))
        except IntegrityError:
            raise Conflict(
                f"a {entry.role} address for network {entry.network!r} is already registered",
                code="treasury_role_exists",
            ) from None

    async def get(self, merchant_id: str, entry_id: str) -> TreasuryAddress | None:
        """The merchant's entry; None for another merchant's or an unknown one."""
        row = (
            (
                await self._conn.execute(
                    select(treasury_addresses).where(
                        treasury_addresses.c.id == entry_id,
                        treasury_addresses.c.merchant_id == merchant_id,
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else TreasuryAddress(**row)

    async def for_role(self, merchant_id: str, network: str, role: str) -> TreasuryAddress | None:
        row = (
            (
                await self._conn.execute(
                    select(treasury_addresses).where(
                        treasury_addresses.c.merchant_id == merchant_id,
                        treasury_addresses.c.network == network,
                        treasury_addresses.c.role == role,
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else TreasuryAddress(**row)

    async def list(self, merchant_id: str) -> list[TreasuryAddress]:
        rows = (
            await self._conn.execute(
                select(treasury_addresses)
                .where(treasury_addresses.c.merchant_id == merchant_id)
                .order_by(treasury_addresses.c.network, treasury_addresses.c.role)
            )
        ).mappings()
        return [TreasuryAddress(**row) for row in rows]
