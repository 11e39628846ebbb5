"""Chain-neutral value objects. Adapters translate node answers into these and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

NATIVE_POSITION = "native"


@dataclass(frozen=True, slots=True)
class BlockRef:
    number: int
    hash: str  # lower-case 0x-hex
    parent_hash: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Transfer:
    """Money that reached a watched address in a verified, successful transaction.

    `position` makes the payment unique within its transaction: "native" for an EVM value
    transfer, the decimal log index for a token Transfer log, the vout for a UTXO output.
    """

    txid: str
    position: str
    to_address: str  # canonical form of the network (EVM: lower-case 0x-hex)
    asset: str  # asset code as configured ("ETH", "USDT")
    amount: int  # base units, > 0
    block: BlockRef
    from_address: str | None = None
    token_contract: str | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Consecutive blocks, each verified to link to the one before, and what they paid us."""

    blocks: tuple[BlockRef, ...]
    transfers: tuple[Transfer, ...]


class ReorgDetected(Exception):
    """The node's chain no longer extends the block we stood on."""

    def __init__(self, height: int) -> None:
        super().__init__(f"chain does not extend our block at height {height}")
        self.height = height


class NodeUnavailable(Exception):
    """No configured node gave a usable answer; the caller retries later, state untouched."""
