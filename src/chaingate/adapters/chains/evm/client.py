"""EvmChainClient: the ChainClient port for Ethereum-like networks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.header import check_block_hash
from chaingate.adapters.chains.evm.heads import NewHeadsListener
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.rpc import JsonRpcClient, NodeEndpoint, RpcError
from chaingate.adapters.chains.evm.scanner import scan_on_node, token_whitelist
from chaingate.domain.chain import (
    EMPTY_MEMPOOL,
    BlockRef,
    Canonical,
    MempoolView,
    NodeUnavailable,
    ScanResult,
)
from chaingate.ports import WatchLookup

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RPC_TIMEOUT = 10.0


class ChainMismatch(RuntimeError):
    """A configured node serves another chain than the network's chain_id: fix the config."""


class EvmChainClient:
    """One EVM network's nodes, seen through verified value objects (see ports.ChainClient).

    Reads fail over between the network's `rpc_urls`; a block scan reads one node's view and
    restarts on the next node if that node fails. Every method raises NodeUnavailable when no
    node gives a usable answer. `close()` also closes `rpc` unless it was passed in.
    """

    def __init__(
        self,
        network: EvmNetworkConfig,
        rpc: JsonRpcClient | None = None,
        *,
        rpc_timeout: float = DEFAULT_RPC_TIMEOUT,
    ) -> None:
        self.network = network
        self._owns_rpc = rpc is None
        self._rpc = rpc or JsonRpcClient(network.rpc_urls, timeout=rpc_timeout)
        self._tokens = token_whitelist(network)
        self._heads = NewHeadsListener(network.ws_url) if network.ws_url else None

    @property
    def rpc(self) -> JsonRpcClient:
        return self._rpc

    @property
    def new_heads_connected(self) -> bool:
        """Whether the WebSocket newHeads subscription is live (False without ws_url)."""
        return self._heads is not None and self._heads.connected

    async def verify_chain(self) -> None:
        """Check that every reachable node serves `network.chain_id`.

        Raises ChainMismatch naming the first node on another chain, NodeUnavailable when no
        node answered at all.
        """
        answered = 0
        for node in self._rpc.endpoints:
            try:
                chain_id = parse.quantity(await node.call("eth_chainId"), "eth_chainId")
            except (NodeUnavailable, RpcError) as exc:
                log.warning(
                    "%s: cannot verify chain id on %s: %s", self.network.name, node.label, exc
                )
                continue
            if chain_id != self.network.chain_id:
                raise ChainMismatch(
                    f"network {self.network.name!r} expects chain id {self.network.chain_id}, "
                    f"but node {node.label} serves chain id {chain_id}"
                )
            answered += 1
        if answered == 0:
            raise NodeUnavailable(f"{self.network.name}: no node answered eth_chainId")

    async def tip_height(self) -> int:
        """The height of the node's best block."""
        return await self._read(_tip)

    async def block_at(self, height: int) -> BlockRef | None:
        """The node's canonical block at `height`, or None if it has none (yet)."""
        if height < 0:
            raise ValueError(f"height must be >= 0, got {height}")
        verify = self.network.verify_block_hashes
        return await self._read(lambda node: _block_at(node, height, verify))

    async def canonical(self, block: BlockRef) -> Canonical:
        """NO when the node's (verified) block at that height has another hash; UNKNOWN when
        it has none. An EVM node keeps serving blocks it reorged away by hash
        (eth_getBlockByHash), so the block at the height is the only proof it gives."""
        found = await self.block_at(block.number)
        if found is None:
            return Canonical.UNKNOWN
        return Canonical.YES if found.hash == block.hash else Canonical.NO

    async def scan(
        self, start: int, end: int, parent: BlockRef | None, is_watched: WatchLookup
    ) -> ScanResult:
        """Blocks start..end (fewer where the node has none yet) and successful transfers to
        watched addresses in them.

        Raises ReorgDetected when block `start` does not extend `parent`. A break in the links
        inside the range truncates the result to its linked prefix instead (the node switched
        branch while answering; the next scan, standing on the prefix, will see the reorg).
        `is_watched` is asked once per attempt: again if the scan restarts on another node.
        """
        if start < 0 or end < start:
            raise ValueError(f"bad block range {start}..{end}")
        if parent is not None and parent.number != start - 1:
            raise ValueError(f"parent {parent.number} is not the block before {start}")
        return await self._read(
            lambda node: scan_on_node(
                node,
                self.network,
                self._tokens,
                start,
                end,
                parent,
                is_watched,
                witnesses=[n for n in self._rpc.endpoints if n is not node],
            )
        )

    async def wait_for_new_head(self, timeout: float) -> None:  # noqa: ASYNC109 - the port's signature
        """Return when a new head is announced over WebSocket, or after `timeout` seconds.

        Without `ws_url`, or while the subscription is down, this is a plain sleep.
        """
        if self._heads is None:
            await asyncio.sleep(timeout)
        else:
            await self._heads.wait(timeout)

    async def mempool(self, is_watched: WatchLookup) -> MempoolView:
        """Always empty: EVM payments are tracked from blocks only (no RBF-style mempool view)."""
        return EMPTY_MEMPOOL

    async def fee_rate(self, target_blocks: int) -> int | None:
        """The node's gas price in wei per gas (`eth_gasPrice`); `target_blocks` is ignored."""
        return await self._read(_gas_price)

    async def close(self) -> None:
        """Stop the newHeads subscription and close our HTTP connections."""
        if self._heads is not None:
            await self._heads.close()
        if self._owns_rpc:
            await self._rpc.close()

    async def _read(self, work: Callable[[NodeEndpoint], Awaitable[T]]) -> T:
        # A reading client never needs a node's error object: even "method not found" or
        # "invalid params" means that node cannot serve us, and another one may.
        async def guarded(node: NodeEndpoint) -> T:
            try:
                return await work(node)
            except RpcError as exc:
                raise BadNodeAnswer(f"{node.label}: {exc}") from exc

        return await self._rpc.on_one_node(guarded)


async def _tip(node: NodeEndpoint) -> int:
    return parse.quantity(await node.call("eth_blockNumber"), "eth_blockNumber")


async def _gas_price(node: NodeEndpoint) -> int:
    return parse.quantity(await node.call("eth_gasPrice"), "eth_gasPrice")


async def _block_at(node: NodeEndpoint, height: int, verify_hash: bool) -> BlockRef | None:
    answer = await node.call("eth_getBlockByNumber", [hex(height), False])
    block = parse.block(answer, full_transactions=False)
    if block is None:
        return None
    if block.ref.number != height:
        raise BadNodeAnswer(f"{node.label}: asked for block {height}, got {block.ref.number}")
    if verify_hash:
        # The tracker reads a hash that differs from the stored one as a reorg: a forged
        # hash must not pass for one.
        check_block_hash(answer, node.label)
    return block.ref
