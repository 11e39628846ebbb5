"""Protocols the services need. Real and fake adapters are chosen in bootstrap.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from chaingate.config import NetworkConfig
from chaingate.domain.chain import BlockRef, MempoolView, ScanResult

WatchLookup = Callable[[Collection[str]], Awaitable[set[str]]]
"""Given candidate recipient addresses, answer the subset the gateway watches."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class ChainClient(Protocol):
    """One network's nodes, seen through verified value objects.

    Every method raises NodeUnavailable when no node answers usefully; none returns guesses.
    """

    async def verify_chain(self) -> None:
        """Raise if a node serves another chain than configured (wrong chain id, genesis)."""
        ...

    async def tip_height(self) -> int:
        """Height of the best block the nodes agree exists."""
        ...

    async def block_at(self, height: int) -> BlockRef | None:
        """The canonical block at `height`, or None if the node does not have it (yet)."""
        ...

    async def scan(
        self, start: int, end: int, parent: BlockRef | None, is_watched: WatchLookup
    ) -> ScanResult:
        """Blocks start..end (inclusive) and the successful transfers to watched addresses.

        Stops early (fewer blocks) where the node has no block yet, or where the range stops
        linking internally (the next call's parent check then sees the reorg). Raises
        ReorgDetected when block `start` does not link to `parent`.
        """
        ...

    async def wait_for_new_head(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when a new block is announced (WebSocket newHeads) or after `timeout`."""
        ...

    async def mempool(self, is_watched: WatchLookup) -> MempoolView:
        """Unconfirmed transfers to watched addresses (block=None) and every mempool txid.

        Families without a usable mempool view (EVM) answer an empty view.
        """
        ...

    async def fee_rate(self, target_blocks: int) -> int | None:
        """The node's fee estimate for confirmation within `target_blocks`, None if it has none.

        Units are the family's native fee unit: Bitcoin family sat/vB (rounded up), EVM wei per
        gas (eth_gasPrice, `target_blocks` ignored).
        """
        ...

    async def close(self) -> None: ...


class AddressDeriver(Protocol):
    """Watch-only derivation for one chain family; never sees a private key."""

    def normalize_account_key(self, extended_key: str) -> str:
        """Validate an account-level extended public key; raise InvalidWallet if unusable."""
        ...

    def derive(self, extended_key: str, index: int) -> str:
        """The receive address `.../0/index`, in the network's canonical form."""
        ...


class PaymentUriBuilder(Protocol):
    """A wallet-readable payment request (EIP-681, BIP-21) for `amount` base units."""

    def __call__(self, network: NetworkConfig, asset: str, address: str, amount: int) -> str: ...


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until the same request would be allowed; 0 when allowed


class RateLimiter(Protocol):
    """Token buckets shared by every API process that uses the same limiter backend."""

    async def spend(self, bucket: str, tokens: float = 1.0) -> RateDecision:
        """Take `tokens` from `bucket` if it holds them; a negative amount refunds (never refused).

        A refused spend takes nothing.
        """
        ...

    async def close(self) -> None: ...
