"""How far the chain has provably moved in time: the proof that decides expiry.

A block's own timestamp is proof only where timestamps never go backwards (EVM chains). A
Bitcoin-family block need only be stamped above the median of the 11 before it, so a block
stamped after `expires_at` may be followed by one stamped before it: there the proof is the
median-time-past, computed from the stored window of verified blocks.
"""

from __future__ import annotations

from datetime import datetime

from chaingate.config import NetworkConfig
from chaingate.domain.chain import MEDIAN_TIME_SPAN, ChainTimeRule, median_time_floor
from chaingate.ports import UnitOfWork


async def passed_time(
    uow: UnitOfWork,
    network: NetworkConfig,
    rule: ChainTimeRule,
    height: int,
    timestamp: datetime,
) -> datetime | None:
    """A time no block after `height` (stamped `timestamp`) can be stamped at or before, by the
    family's `rule`; None when nothing is proven yet (median-time-past with fewer than 6 stored
    blocks)."""
    if rule is ChainTimeRule.BLOCK_TIMESTAMP:
        return timestamp
    stored = await uow.chain.blocks_from(network.name, height - MEDIAN_TIME_SPAN + 1)
    return median_time_floor(b.timestamp for b in stored if b.number <= height)
