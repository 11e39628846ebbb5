"""Chain-neutral value objects. Adapters translate node answers into these and nothing else."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

NATIVE_POSITION = "native"


@dataclass(frozen=True, slots=True)
class BlockRef:
    number: int
    hash: str  # lower-case hex as the family writes it (EVM: 0x-prefixed; Bitcoin: bare, 64 chars)
    parent_hash: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Transfer:
    """Money that reached a watched address in a verified, successful transaction.

    `position` makes the payment unique within its transaction: "native" for an EVM value
    transfer, the decimal log index for a token Transfer log, the vout for a UTXO output.
    `block` is None for a transaction seen in the mempool only (Bitcoin family). `coinbase`
    marks a block reward output: spendable only after COINBASE_MATURITY confirmations.
    """

    txid: str
    position: str
    to_address: str  # canonical form of the network (EVM: lower-case 0x-hex)
    asset: str  # asset code as configured ("ETH", "USDT")
    amount: int  # base units, > 0
    block: BlockRef | None
    from_address: str | None = None
    token_contract: str | None = None
    coinbase: bool = False


COINBASE_MATURITY = 100
"""Confirmations a Bitcoin-family coinbase output needs before the network lets it be spent."""


class ChainTimeRule(Enum):
    """What proves that a chain has moved past a moment (the proof expiry waits for)."""

    # Every block is stamped after its parent (EVM chains): the newest verified block's stamp.
    BLOCK_TIMESTAMP = "block_timestamp"
    # A block need only be stamped above the median of the 11 before it (Bitcoin family): the
    # median-time-past of the stored window of verified blocks.
    MEDIAN_TIME_PAST = "median_time_past"


MEDIAN_TIME_SPAN = 11
"""Bitcoin-family median-time-past spans the last 11 blocks; every next block must be stamped
above it, so it never decreases (a block's own timestamp may go backwards)."""


def median_time_floor(window: Iterable[datetime]) -> datetime | None:
    """A time the chain has provably passed, from the timestamps of the newest consecutive
    blocks (at most MEDIAN_TIME_SPAN of them, the tip's included, in any order).

    With all 11 it is the tip's median-time-past. With fewer it is the 6th newest timestamp
    by value, which is at most the real median (more blocks only raise it). Every block after
    the tip is stamped above that median, and the median never decreases, so no later block
    can be stamped at or before the answer. None when fewer than 6 blocks are known: no proof.
    """
    stamps = sorted(window, reverse=True)[:MEDIAN_TIME_SPAN]
    needed = MEDIAN_TIME_SPAN // 2 + 1
    return stamps[needed - 1] if len(stamps) >= needed else None


@dataclass(frozen=True, slots=True)
class MempoolView:
    """One look at a node's mempool.

    `transfers` are the watched outputs of unconfirmed transactions (each with `block=None`);
    `txids` are ALL transactions in that mempool, so a caller can tell that a transaction it
    saw before was mined, replaced (RBF) or evicted. Empty for chains without a mempool view.
    `loaded` False: the node is still loading its mempool from disk, so a missing transaction
    proves nothing (Core's `getmempoolinfo.loaded`).
    """

    transfers: tuple[Transfer, ...]
    txids: frozenset[str]
    loaded: bool = True


EMPTY_MEMPOOL = MempoolView(transfers=(), txids=frozenset())


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Consecutive blocks, each verified to link to the one before, and what they paid us."""

    blocks: tuple[BlockRef, ...]
    transfers: tuple[Transfer, ...]


class Canonical(Enum):
    """A node's answer to "is this block still in your best chain?"."""

    YES = "yes"
    # Proven: the node holds another block at that height, or says it left that block's branch
    # (Bitcoin Core: confirmations -1 for a block it knows, on a branch it judged worse or
    # invalid). Holds even while the node's chain is shorter than ours.
    NO = "no"
    # The node cannot tell: it has not reached that height, never saw the block, or has its
    # header only (still downloading). A lagging node proves nothing.
    UNKNOWN = "unknown"


class ReorgDetected(Exception):
    """The node's chain no longer extends the block we stood on."""

    def __init__(self, height: int) -> None:
        super().__init__(f"chain does not extend our block at height {height}")
        self.height = height


class NodeUnavailable(Exception):
    """No configured node gave a usable answer; the caller retries later, state untouched."""
