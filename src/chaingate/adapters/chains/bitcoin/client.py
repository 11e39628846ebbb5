"""BitcoinChainClient: the ChainClient port for Bitcoin Core-compatible nodes.

A scan reads one node's view: the hashes of the heights asked for, each block's raw 80-byte
header (its double-SHA256 must be the hash, its proof of work valid for the chain's params,
its parent field must link) and the verbose block,
whose transactions must make up the header's Merkle root. Outputs are matched with ONE
is_watched question per scan, so the cost does not depend on how many addresses are watched.

New blocks are found by polling `getbestblockhash`. ZMQ (`hashblock`/`rawtx`) would save the
poll, but needs pyzmq, which this gateway does not depend on; polling is the only path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from chaingate.adapters.chains.bitcoin import parse
from chaingate.adapters.chains.bitcoin.canonical import canonical_on_node
from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.params import ChainParams, params_for
from chaingate.adapters.chains.bitcoin.rpc import (
    BadNodeAnswer,
    BitcoinRpcClient,
    NodeEndpoint,
    RpcAuth,
    RpcError,
)
from chaingate.domain.chain import (
    BlockRef,
    Canonical,
    MempoolView,
    NodeUnavailable,
    ReorgDetected,
    ScanResult,
    Transfer,
)
from chaingate.ports import WatchLookup

log = logging.getLogger(__name__)

DEFAULT_RPC_TIMEOUT = 30.0
HEAD_POLL_SECONDS = 0.5
BLOCK_BATCH = 4  # verbose blocks per JSON-RPC batch: a mainnet block is ~10 MB of JSON
MEMPOOL_BATCH = 500
_OUT_OF_RANGE = -8  # "Block height out of range"
_NOT_FOUND = -5  # "No such mempool or blockchain transaction"


class ChainMismatch(RuntimeError):
    """A configured node serves another chain than configured (genesis hash): fix the config."""


class BitcoinChainClient:
    """One Bitcoin-family network's nodes, seen through verified value objects.

    Every method raises NodeUnavailable when no node gives a usable answer.
    """

    def __init__(
        self,
        network: BitcoinNetworkConfig,
        rpc: BitcoinRpcClient | None = None,
        *,
        rpc_timeout: float = DEFAULT_RPC_TIMEOUT,
        head_poll_seconds: float = HEAD_POLL_SECONDS,
    ) -> None:
        self.network = network
        self.params: ChainParams = params_for(network)
        auth = RpcAuth(network.rpc_user, network.rpc_password, network.rpc_cookie_file)
        self._owns_rpc = rpc is None
        self._rpc = rpc or BitcoinRpcClient(network.rpc_urls, auth, timeout=rpc_timeout)
        self._head_poll = head_poll_seconds
        self._best_hash: str | None = None
        # Mempool txids already parsed and matched, and the watched transfers found in them.
        self._mempool_seen: set[str] = set()
        self._mempool_watched: dict[str, tuple[Transfer, ...]] = {}

    @property
    def rpc(self) -> BitcoinRpcClient:
        return self._rpc

    async def verify_chain(self) -> None:
        """Check that every reachable node has the configured genesis block.

        Raises ChainMismatch naming the first node on another chain, NodeUnavailable when no
        node answered at all.
        """
        expected = self.params.genesis_hash
        answered = 0
        for node in self._rpc.endpoints:
            try:
                genesis = parse.hash_hex(await node.call("getblockhash", [0]), "genesis hash")
            except (NodeUnavailable, RpcError) as exc:
                log.warning(
                    "%s: cannot verify genesis on %s: %s", self.network.name, node.label, exc
                )
                continue
            if expected is not None and genesis != expected:
                raise ChainMismatch(
                    f"network {self.network.name!r} expects {self.params.chain} "
                    f"{self.params.network} (genesis {expected}), but node {node.label} "
                    f"serves genesis {genesis}"
                )
            answered += 1
        if answered == 0:
            raise NodeUnavailable(f"{self.network.name}: no node answered getblockhash 0")

    async def tip_height(self) -> int:
        """The height of the node's best block."""
        return await self._rpc.on_one_node(_tip)

    async def block_at(self, height: int) -> BlockRef | None:
        """The node's block at `height` (header verified), or None beyond its tip."""
        if height < 0:
            raise ValueError(f"height must be >= 0, got {height}")

        async def work(node: NodeEndpoint) -> BlockRef | None:
            hashes = await _hashes(node, [height])
            if not hashes:
                return None
            head = parse.header(
                await node.call("getblockheader", [hashes[0], False]),
                hashes[0],
                f"block {height}",
                self.params,
            )
            return _ref(head, height)

        return await self._rpc.on_one_node(work)

    async def canonical(self, block: BlockRef) -> Canonical:
        """The node's verdict on `block` (see bitcoin/canonical.py): NO also while its chain
        is shorter than ours, when it says our block left its best chain."""
        return await self._rpc.on_one_node(lambda node: canonical_on_node(node, block))

    async def scan(
        self, start: int, end: int, parent: BlockRef | None, is_watched: WatchLookup
    ) -> ScanResult:
        """Blocks start..end (fewer where the node has none yet) and their outputs that pay
        watched addresses. Raises ReorgDetected when block `start` does not extend `parent`;
        a break in the links inside the range truncates the result to its linked prefix."""
        if start < 0 or end < start:
            raise ValueError(f"bad block range {start}..{end}")
        if parent is not None and parent.number != start - 1:
            raise ValueError(f"parent {parent.number} is not the block before {start}")
        return await self._rpc.on_one_node(
            lambda node: self._scan_on(node, start, end, parent, is_watched)
        )

    async def _scan_on(
        self,
        node: NodeEndpoint,
        start: int,
        end: int,
        parent: BlockRef | None,
        is_watched: WatchLookup,
    ) -> ScanResult:
        hashes = await _hashes(node, list(range(start, end + 1)))
        heads = [
            parse.header(raw, block_hash, f"block {start + i}", self.params)
            for i, (raw, block_hash) in enumerate(
                zip(
                    await node.batch([("getblockheader", [h, False]) for h in hashes]),
                    hashes,
                    strict=True,
                )
            )
        ]
        # Link check on the verified headers first: no block body is read past a break.
        linked: list[parse.Header] = []
        for head in heads:
            if linked and head.parent_hash != linked[-1].hash:
                break  # the node changed branch while answering; the next scan will see it
            linked.append(head)
        if linked and parent is not None and linked[0].parent_hash != parent.hash:
            raise ReorgDetected(parent.number)
        blocks: list[parse.NodeBlock] = []
        decimals = self.network.native_decimals
        for first in range(0, len(linked), BLOCK_BATCH):
            chunk = linked[first : first + BLOCK_BATCH]
            bodies = await node.batch([("getblock", [h.hash, 2]) for h in chunk])
            for offset, (head, body) in enumerate(zip(chunk, bodies, strict=True)):
                blocks.append(
                    parse.block(body, head, start + first + offset, decimals, mweb=self.params.mweb)
                )
        outputs = [(b.ref, o) for b in blocks for o in b.outputs]
        transfers = await self._watched(outputs, is_watched)
        await self._check_raw(node, transfers)
        return ScanResult(blocks=tuple(b.ref for b in blocks), transfers=transfers)

    async def _check_raw(self, node: NodeEndpoint, transfers: Sequence[Transfer]) -> None:
        """Re-read each crediting block transaction's raw bytes (one batch): the verbose JSON is
        only the node's word, the bytes must hash to the txid the Merkle root covers."""
        claims = _claims(transfers)
        if not claims:
            return
        blocks = {t.txid: t.block for t in transfers if t.block is not None}
        calls: list[tuple[str, Sequence[Any]]] = [
            ("getrawtransaction", [txid, False, blocks[txid].hash]) for txid in claims
        ]
        self._verify(claims, dict(zip(claims, await node.batch(calls), strict=True)))

    def _verify(
        self, claims: dict[str, list[tuple[int, str, int]]], raw_hex: dict[str, object]
    ) -> None:
        for txid, outputs in claims.items():
            parse.check_raw_outputs(raw_hex.get(txid), txid, outputs, self.params)

    async def _watched(
        self,
        outputs: Sequence[tuple[BlockRef | None, parse.Output]],
        is_watched: WatchLookup,
    ) -> tuple[Transfer, ...]:
        candidates = {o.address for _, o in outputs}
        if not candidates:
            return ()
        # Only what we asked about can be watched, whatever the lookup answers.
        watched = set(await is_watched(candidates)) & candidates
        return tuple(
            Transfer(
                txid=o.txid,
                position=str(o.vout),
                to_address=o.address,
                asset=self.network.native_symbol,
                amount=o.amount,
                block=ref,
                coinbase=o.coinbase,
            )
            for ref, o in outputs
            if o.address in watched
        )

    async def mempool(self, is_watched: WatchLookup) -> MempoolView:
        """Watched outputs of unconfirmed transactions (block=None) and all mempool txids.

        Transactions are parsed and looked up once, when first seen; a transaction that left
        the mempool is forgotten. Outputs of a transaction are matched against the addresses
        watched when it was first seen (its invoice exists before it is paid).
        """
        return await self._rpc.on_one_node(lambda node: self._mempool_on(node, is_watched))

    async def _mempool_on(self, node: NodeEndpoint, is_watched: WatchLookup) -> MempoolView:
        if not _mempool_loaded(await node.call("getmempoolinfo", []), node.label):
            # Still loading mempool.dat after a restart: a missing transaction proves nothing,
            # and the same node answers the snapshot below, so ask again next poll.
            return MempoolView(transfers=(), txids=frozenset(), loaded=False)
        listed = parse_txids(await node.call("getrawmempool", [False]))
        for gone in self._mempool_seen - listed:
            self._mempool_seen.discard(gone)
            self._mempool_watched.pop(gone, None)
        new = sorted(listed - self._mempool_seen)
        fresh: list[tuple[BlockRef | None, parse.Output]] = []
        parsed: list[str] = []
        raw_hex: dict[str, object] = {}
        decimals = self.network.native_decimals
        for first in range(0, len(new), MEMPOOL_BATCH):
            # A tx gone since getrawmempool (mined, evicted) is skipped: the next poll tells.
            for txid, raw in await _raw_transactions(node, new[first : first + MEMPOOL_BATCH]):
                got, outputs = parse.transaction_outputs(
                    raw, decimals, f"mempool tx {txid}", mweb=self.params.mweb
                )
                if got != txid:
                    raise BadNodeAnswer(f"{node.label}: asked for tx {txid}, got {got}")
                parsed.append(txid)
                raw_hex[txid] = raw.get("hex") if isinstance(raw, dict) else None
                fresh.extend((None, o) for o in outputs)
        found = await self._watched(fresh, is_watched)
        # The verbose answer carries the bytes: check them, no second call (nor race).
        self._verify(_claims(found), raw_hex)
        self._mempool_seen.update(parsed)
        for t in found:
            self._mempool_watched[t.txid] = (*self._mempool_watched.get(t.txid, ()), t)
        transfers = tuple(t for txid in sorted(listed) for t in self._mempool_watched.get(txid, ()))
        return MempoolView(transfers=transfers, txids=frozenset(listed))

    async def fee_rate(self, target_blocks: int) -> int | None:
        """`estimatesmartfee` in sat/vB (rounded up), None while the node has no estimate."""
        if not 1 <= target_blocks <= 1008:
            raise ValueError(f"target_blocks must be in 1..1008, got {target_blocks}")

        async def work(node: NodeEndpoint) -> int | None:
            answer = await node.call("estimatesmartfee", [target_blocks])
            if not isinstance(answer, dict):
                raise BadNodeAnswer(f"{node.label}: estimatesmartfee: expected an object")
            if "feerate" not in answer:
                return None  # "Insufficient data or no feerate found"
            per_kvb = parse.base_units(answer["feerate"], 8, "estimatesmartfee.feerate")
            return max(1, -(-per_kvb // 1000))

        return await self._rpc.on_one_node(work)

    async def wait_for_new_head(self, timeout: float) -> None:  # noqa: ASYNC109 - the port's signature
        """Return when the node's best block changes, or after `timeout` seconds (polling)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                best = await self._rpc.on_one_node(_best_hash)
            except NodeUnavailable:
                best = None
            if best is not None:
                changed = self._best_hash is not None and best != self._best_hash
                self._best_hash = best
                if changed:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(self._head_poll, remaining))

    async def close(self) -> None:
        if self._owns_rpc:
            await self._rpc.close()


def _claims(transfers: Sequence[Transfer]) -> dict[str, list[tuple[int, str, int]]]:
    """(vout, address, amount) claimed per txid."""
    claims: dict[str, list[tuple[int, str, int]]] = {}
    for t in transfers:
        claims.setdefault(t.txid, []).append((int(t.position), t.to_address, t.amount))
    return claims


def parse_txids(answer: object) -> set[str]:
    if not isinstance(answer, list):
        raise BadNodeAnswer("getrawmempool: expected a list of txids")
    return {parse.hash_hex(t, "mempool txid") for t in answer}


async def _tip(node: NodeEndpoint) -> int:
    return parse.integer(await node.call("getblockcount"), "getblockcount", high=parse.MAX_HEIGHT)


async def _best_hash(node: NodeEndpoint) -> str:
    return parse.hash_hex(await node.call("getbestblockhash"), "getbestblockhash")


async def _hashes(node: NodeEndpoint, heights: list[int]) -> list[str]:
    """Hashes of `heights` (consecutive), cut where the node has no block yet."""
    tip = await _tip(node)
    wanted = [h for h in heights if h <= tip]
    if not wanted:
        return []
    try:
        answers = await node.batch([("getblockhash", [h]) for h in wanted])
    except RpcError as exc:
        if exc.code != _OUT_OF_RANGE:
            raise
        return []  # the tip moved back (reorg to a shorter chain) between the two calls
    return [parse.hash_hex(a, f"getblockhash {h}") for a, h in zip(answers, wanted, strict=True)]


def _ref(head: parse.Header, height: int) -> BlockRef:
    return BlockRef(
        height, head.hash, head.parent_hash, datetime.fromtimestamp(head.timestamp, UTC)
    )


async def _raw_transactions(node: NodeEndpoint, txids: list[str]) -> list[tuple[str, Any]]:
    """(txid, verbose tx) for those of `txids` the node still has; one batch, or one call each
    when some left the mempool meanwhile (a batch fails on its first error)."""
    try:
        answers = await node.batch([("getrawtransaction", [t, True]) for t in txids])
        return list(zip(txids, answers, strict=True))
    except RpcError as exc:
        if exc.code != _NOT_FOUND:
            raise
    found: list[tuple[str, Any]] = []
    for txid in txids:
        try:
            found.append((txid, await node.call("getrawtransaction", [txid, True])))
        except RpcError as exc:
            if exc.code != _NOT_FOUND:
                raise
    return found


def _mempool_loaded(info: object, label: str) -> bool:
    """`getmempoolinfo.loaded`; a node too old to say is taken as loaded."""
    if not isinstance(info, dict):
        raise BadNodeAnswer(f"{label}: getmempoolinfo answered {type(info).__name__}")
    loaded = info.get("loaded", True)
    if not isinstance(loaded, bool):
        raise BadNodeAnswer(f"{label}: getmempoolinfo.loaded is {loaded!r}")
    return loaded
