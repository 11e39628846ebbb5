from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.repositories._sql import insert_ignoring_duplicates
from chaingate.adapters.db.tables import chain_blocks, chain_cursors
from chaingate.domain.chain import BlockRef
from chaingate.domain.models import ChainCursor


class ChainRepository:
    """The tracker's durable position per network and the recent canonical blocks behind it."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def cursor(self, network: str) -> ChainCursor | None:
        row = (
            (
                await self._conn.execute(
                    select(chain_cursors).where(chain_cursors.c.network == network)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        return ChainCursor(**{k: v for k, v in row.items() if k != "updated_at"})

    async def start_cursor(self, network: str, block: BlockRef, at: datetime) -> bool:
        """Place the first cursor; False if another tracker placed one first."""
        created = await insert_ignoring_duplicates(
            self._conn,
            chain_cursors,
            {
                "network": network,
                "height": block.number,
                "hash": block.hash,
                "block_timestamp": block.timestamp,
                "synced_at": None,
                "updated_at": at,
            },
        )
        if created:
            await self.add_blocks(network, [block])
        return created

    async def move_cursor(
        self, network: str, expected: ChainCursor, block: BlockRef, at: datetime
    ) -> bool:
        """Compare-and-set: move only if nobody else moved it since `expected` was read.

        Two trackers on one network both scan; only one commit wins, the other rolls back.
        """
        result = await self._conn.execute(
            update(chain_cursors)
            .where(
                chain_cursors.c.network == network,
                chain_cursors.c.height == expected.height,
                chain_cursors.c.hash == expected.hash,
            )
            .values(
                height=block.number,
                hash=block.hash,
                block_timestamp=block.timestamp,
                updated_at=at,
            )
        )
        return bool(result.rowcount)

    async def mark_synced(self, network: str, expected: ChainCursor, at: datetime) -> None:
        await self._conn.execute(
            update(chain_cursors)
            .where(
                chain_cursors.c.network == network,
                chain_cursors.c.height == expected.height,
                chain_cursors.c.hash == expected.hash,
            )
            .values(synced_at=at)
        )

    async def add_blocks(self, network: str, blocks: Sequence[BlockRef]) -> None:
        if not blocks:
            return
        await self._conn.execute(
            chain_blocks.insert(),
            [
                {
                    "network": network,
                    "number": b.number,
                    "hash": b.hash,
                    "parent_hash": b.parent_hash,
                    "timestamp": b.timestamp,
                }
                for b in blocks
            ],
        )

    async def blocks_from(self, network: str, low: int) -> list[BlockRef]:
        """Stored canonical blocks at heights >= low, highest first."""
        rows = await self._conn.execute(
            select(chain_blocks)
            .where(chain_blocks.c.network == network, chain_blocks.c.number >= low)
            .order_by(chain_blocks.c.number.desc())
        )
        return [
            BlockRef(number=r.number, hash=r.hash, parent_hash=r.parent_hash, timestamp=r.timestamp)
            for r in rows
        ]

    async def forget_above(self, network: str, height: int) -> None:
        await self._conn.execute(
            delete(chain_blocks).where(
                chain_blocks.c.network == network, chain_blocks.c.number > height
            )
        )

    async def prune_below(self, network: str, height: int) -> None:
        await self._conn.execute(
            delete(chain_blocks).where(
                chain_blocks.c.network == network, chain_blocks.c.number < height
            )
        )
