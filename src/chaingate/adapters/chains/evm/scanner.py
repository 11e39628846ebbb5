"""Scanning a range of blocks on ONE node for payments to watched addresses.

Everything here reads a single node's view; any inconsistency in that view raises BadNodeAnswer
so the whole scan restarts on another node (see JsonRpcClient.on_one_node). The order of checks:

1. blocks start..end with full transactions, in one batch; stop at the first the node lacks;
   each must carry the number we asked for, a hash that is its header's hash (unless the
   network opts out) and link to the one before (else keep the linked prefix: the node
   switched branch while answering, the next scan will notice);
2. block `start` must link to the block we stood on, else ReorgDetected;
3. Transfer logs of whitelisted tokens, fetched by block hash and only where the bloom allows;
   each log must be one the bloom can hold, and none may be missing: every transaction that
   called a whitelisted contract directly has its receipt read, and the Transfer logs the
   receipt holds must all be in the node's log list (a node answering [] or a short list for
   a block whose bloom announces transfers would otherwise make us skip a real payment);
4. with `internal_transfers` on, the block's traces (traces.py): value moved by contracts;
5. one is_watched() question with every candidate recipient;
6. evidence for each block holding a payment to a watched address (evidence.py): its
   transactions and receipts proven against the header's roots, or a second node's word;
   only then does a payment count, and only when its transaction succeeded, (for a token)
   its proven receipt holds the very log we found, and (for an internal transfer) the trace
   agrees with the proven transaction and no call on its path reverted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from chaingate.adapters.chains.evm import evidence, parse
from chaingate.adapters.chains.evm.bloom import bloom_contains, may_hold_log
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.evidence import Evidence, PayingBlock
from chaingate.adapters.chains.evm.header import check_block_hash
from chaingate.adapters.chains.evm.parse import (
    BadNodeAnswer,
    NodeBlock,
    NodeLog,
    NodeReceipt,
    NodeTransaction,
)
from chaingate.adapters.chains.evm.rpc import NodeEndpoint, RpcCall
from chaingate.adapters.chains.evm.traces import (
    InternalTransfer,
    Tracer,
    TransactionTrace,
    block_traces,
    trace_request,
)
from chaingate.config import TokenConfig
from chaingate.domain.chain import NATIVE_POSITION, BlockRef, ReorgDetected, ScanResult, Transfer
from chaingate.ports import WatchLookup

TRANSFER_TOPIC = "0x" + keccak(b"Transfer(address,address,uint256)").hex()
_TRANSFER_TOPIC_BYTES = bytes.fromhex(TRANSFER_TOPIC[2:])
_ADDRESS_PADDING = "0" * 24  # an ABI-encoded address is 12 zero bytes, then 20 address bytes


@dataclass(frozen=True, slots=True)
class _Candidate:
    """Money that reaches `to_address` if its transaction succeeded."""

    block: BlockRef
    txid: str
    tx_index: int
    log_index: int | None  # None for a native value transfer
    internal: InternalTransfer | None  # set for value moved by a contract's call
    to_address: str
    from_address: str
    asset: str
    amount: int
    token_contract: str | None

    @property
    def position(self) -> str:
        if self.internal is not None:
            return self.internal.position
        return NATIVE_POSITION if self.log_index is None else str(self.log_index)

    def transfer(self, signer: str | None) -> Transfer:
        """The Transfer; `signer`: the transaction's proven signer, the payer of a direct
        value transfer (a token's or a contract's payer is the log's or the call's sender)."""
        direct = self.log_index is None and self.internal is None
        return Transfer(
            txid=self.txid,
            position=self.position,
            to_address=self.to_address,
            asset=self.asset,
            amount=self.amount,
            block=self.block,
            from_address=signer if direct and signer else self.from_address,
            token_contract=self.token_contract,
        )

    def sort_key(self) -> tuple[int, int, int, int]:
        log_index = -1 if self.log_index is None else self.log_index
        ordinal = -1 if self.internal is None else self.internal.ordinal
        return (self.block.number, self.tx_index, log_index, ordinal)


def token_whitelist(network: EvmNetworkConfig) -> dict[str, TokenConfig]:
    """Whitelisted token contracts by lower-case address (the first entry wins a duplicate)."""
    whitelist: dict[str, TokenConfig] = {}
    for token in network.tokens:
        whitelist.setdefault(token.contract.lower(), token)
    return whitelist


async def scan_on_node(
    node: NodeEndpoint,
    network: EvmNetworkConfig,
    tokens: Mapping[str, TokenConfig],
    start: int,
    end: int,
    parent: BlockRef | None,
    is_watched: WatchLookup,
    witnesses: Sequence[NodeEndpoint] = (),
) -> ScanResult:
    """Blocks start..end as this node sees them, and the verified transfers to watched addresses.

    `witnesses`: the network's other nodes, asked where a second node's word is needed.
    Raises ReorgDetected when block `start` does not extend `parent`, BadNodeAnswer (a
    NodeUnavailable) when the node's answers are malformed or contradict each other or the
    headers, evidence.UnconfirmedPayment when a second node was needed and none agreed.
    """
    blocks, answers = await _linked_blocks(node, start, end, parent, network.verify_block_hashes)
    refs = tuple(b.ref for b in blocks)
    receipts = _Receipts(node)
    candidates = _native_candidates(blocks, network.native_symbol)
    tracer = None if network.internal_transfers == "off" else network.internal_transfers
    traces: dict[str, TransactionTrace] = {}
    if tracer is not None:
        traces = await _traces(node, tracer, blocks)
        candidates += _internal_candidates(blocks, traces, network.native_symbol)
    if tokens:
        candidates += await _token_candidates(node, blocks, tokens, receipts)
    if not candidates:
        return ScanResult(blocks=refs, transfers=())

    recipients = {c.to_address for c in candidates}
    # Only what we asked about can be watched, whatever the lookup answers.
    watched = {a.lower() for a in await is_watched(recipients)} & recipients
    paying = [c for c in candidates if c.to_address in watched]
    if not paying:
        return ScanResult(blocks=refs, transfers=())
    found = await evidence.gather(
        node, witnesses, network, tracer, _paying_blocks(paying, blocks, answers, traces)
    )
    tx_of = {tx.hash: tx for b in blocks for tx in b.transactions}
    credited = sorted(
        (c for c in paying if _credits(node, c, found[c.block.hash], tx_of[c.txid], traces)),
        key=_Candidate.sort_key,
    )
    return ScanResult(
        blocks=refs,
        transfers=tuple(c.transfer(found[c.block.hash].senders.get(c.txid)) for c in credited),
    )


def _paying_blocks(
    paying: list[_Candidate],
    blocks: list[NodeBlock],
    answers: Mapping[str, Mapping[str, Any]],
    traces: Mapping[str, TransactionTrace],
) -> list[PayingBlock]:
    by_hash = {
        b.ref.hash: PayingBlock(b, answers[b.ref.hash], answers.get(b.ref.parent_hash))
        for b in blocks
    }
    for candidate in paying:
        block = by_hash[candidate.block.hash]
        block.txids.add(candidate.txid)
        if candidate.log_index is None:  # ETH, direct or by a contract: want the signer
            block.signed_by_payer.add(candidate.txid)
            block.ether.append((candidate.txid, candidate.to_address, candidate.amount))
        if candidate.internal is not None:
            block.traced[candidate.txid] = traces[candidate.txid].transfers
            block.internal_recipients.add(candidate.to_address)
    return [b for b in by_hash.values() if b.txids]


async def _linked_blocks(
    node: NodeEndpoint, start: int, end: int, parent: BlockRef | None, verify_hashes: bool
) -> tuple[list[NodeBlock], dict[str, Mapping[str, Any]]]:
    """The linked blocks, and the JSON each was parsed from (by hash) for the proofs."""
    heights = range(start, end + 1)
    answers = await node.batch([("eth_getBlockByNumber", [hex(n), True]) for n in heights])
    blocks: list[NodeBlock] = []
    sources: dict[str, Mapping[str, Any]] = {}
    for height, answer in zip(heights, answers, strict=True):
        block = parse.block(answer, full_transactions=True)
        if block is None:
            break  # the node does not have it yet: never read a missing block as empty
        if block.ref.number != height:
            raise BadNodeAnswer(f"{node.label}: asked for block {height}, got {block.ref.number}")
        if verify_hashes:
            check_block_hash(answer, node.label)
        if blocks and block.ref.parent_hash != blocks[-1].ref.hash:
            break  # the node changed branch mid-answer; the next scan's parent check will tell
        blocks.append(block)
        sources[block.ref.hash] = answer
    if blocks and parent is not None and blocks[0].ref.parent_hash != parent.hash:
        raise ReorgDetected(parent.number)
    return blocks, sources


def _native_candidates(blocks: list[NodeBlock], asset: str) -> list[_Candidate]:
    return [
        _Candidate(
            block=block.ref,
            txid=tx.hash,
            tx_index=tx.index,
            log_index=None,
            internal=None,
            to_address=tx.to_address,
            from_address=tx.from_address,
            asset=asset,
            amount=tx.value,
            token_contract=None,
        )
        for block in blocks
        for tx in block.transactions
        if tx.to_address is not None and tx.value > 0
    ]


async def _traces(
    node: NodeEndpoint, tracer: Tracer, blocks: list[NodeBlock]
) -> dict[str, TransactionTrace]:
    """Every transaction's trace, by txid (blocks without transactions are not traced)."""
    busy = [b for b in blocks if b.transactions]
    answers = await node.batch([trace_request(tracer, b.ref.hash, b.ref.number) for b in busy])
    traces: dict[str, TransactionTrace] = {}
    for block, answer in zip(busy, answers, strict=True):
        txids = [tx.hash for tx in block.transactions]
        for trace in block_traces(tracer, answer, txids, block.ref.hash):
            traces[trace.txid] = trace
    return traces


def _internal_candidates(
    blocks: list[NodeBlock], traces: Mapping[str, TransactionTrace], asset: str
) -> list[_Candidate]:
    # Reverted transfers are not candidates; whether the transaction succeeded is decided
    # later, from its proven receipt, for those that pay a watched address.
    return [
        _Candidate(
            block=block.ref,
            txid=tx.hash,
            tx_index=tx.index,
            log_index=None,
            internal=moved,
            to_address=moved.to_address,
            from_address=moved.from_address,
            asset=asset,
            amount=moved.amount,
            token_contract=None,
        )
        for block in blocks
        for tx in block.transactions
        for moved in traces[tx.hash].transfers
        if moved.to_address is not None and not moved.reverted
    ]


async def _token_candidates(
    node: NodeEndpoint,
    blocks: list[NodeBlock],
    tokens: Mapping[str, TokenConfig],
    receipts: _Receipts,
) -> list[_Candidate]:
    contracts = sorted(tokens)
    contract_bytes = [bytes.fromhex(c[2:]) for c in contracts]
    with_logs = [
        b for b in blocks if may_hold_log(b.logs_bloom, contract_bytes, _TRANSFER_TOPIC_BYTES)
    ]
    # By block hash, not by number: a node that lost the block errors instead of answering [].
    calls: list[RpcCall] = [
        (
            "eth_getLogs",
            [{"blockHash": b.ref.hash, "address": contracts, "topics": [TRANSFER_TOPIC]}],
        )
        for b in with_logs
    ]
    answers = await node.batch(calls)
    listed: list[tuple[NodeBlock, tuple[NodeLog, ...]]] = []
    for block, answer in zip(with_logs, answers, strict=True):
        block_logs = parse.logs(answer)
        _check_logs_belong(node, block, block_logs)
        listed.append((block, block_logs))
    await _check_no_log_left_out(node, listed, tokens, receipts)

    candidates: list[_Candidate] = []
    for block, block_logs in listed:
        tx_index = {tx.hash: tx.index for tx in block.transactions}
        for log in block_logs:
            candidate = _token_candidate(block.ref, log, tx_index, tokens)
            if candidate is not None:
                _check_in_bloom(node, block, log)
                candidates.append(candidate)
    return candidates


def _check_in_bloom(node: NodeEndpoint, block: NodeBlock, log: NodeLog) -> None:
    # A real log set its contract's and topics' bits in the header's bloom (which the hash
    # check ties to the block): a made-up payment must also hit the recipient's bits.
    items = (log.address, *log.topics)
    if not all(bloom_contains(block.logs_bloom, bytes.fromhex(i[2:])) for i in items):
        raise BadNodeAnswer(f"{node.label}: log {log.log_index} is not in its block's bloom")


def _check_logs_belong(node: NodeEndpoint, block: NodeBlock, logs: tuple[NodeLog, ...]) -> None:
    in_block = {tx.hash for tx in block.transactions}
    seen: set[int] = set()
    for log in logs:
        if log.block_hash != block.ref.hash or log.block_number != block.ref.number:
            raise BadNodeAnswer(f"{node.label}: a log of block {block.ref.hash} names another")
        if log.transaction_hash not in in_block:
            raise BadNodeAnswer(f"{node.label}: a log names a transaction not in its block")
        if log.log_index in seen:
            raise BadNodeAnswer(f"{node.label}: log index {log.log_index} repeated in a block")
        seen.add(log.log_index)


async def _check_no_log_left_out(
    node: NodeEndpoint,
    listed: list[tuple[NodeBlock, tuple[NodeLog, ...]]],
    tokens: Mapping[str, TokenConfig],
    receipts: _Receipts,
) -> None:
    """Raise BadNodeAnswer when the receipt of a direct call to a whitelisted contract holds a
    Transfer log that the node's log list for that block left out.

    An empty list is also what an honest node says when the bloom matched by chance, so the
    list alone proves nothing either way; the receipts of the block's token calls do. (A
    transfer made from inside another contract's call is not covered: that would take every
    receipt of the block, or a second node's word.)
    """
    direct = {
        tx.hash: block.ref
        for block, _ in listed
        for tx in block.transactions
        if tx.to_address in tokens
    }
    await receipts.fetch(direct)
    for block, logs in listed:
        shown = set(logs)
        for tx in block.transactions:
            if tx.hash not in direct:
                continue
            for log in receipts.of(tx.hash).logs or ():
                is_transfer = log.address in tokens and log.topics[:1] == (TRANSFER_TOPIC,)
                if is_transfer and log not in shown:
                    raise BadNodeAnswer(
                        f"{node.label}: eth_getLogs left out log {log.log_index} of "
                        f"{tx.hash}, which its receipt holds"
                    )


def _token_candidate(
    block: BlockRef, log: NodeLog, tx_index: Mapping[str, int], tokens: Mapping[str, TokenConfig]
) -> _Candidate | None:
    token = tokens.get(log.address)
    # The node may return logs we did not ask for; only the whitelist and the exact ERC-20
    # shape count (3 topics: an ERC-721 Transfer has the same topic0 but 4 topics).
    if token is None or log.removed or len(log.topics) != 3 or len(log.data) != 32:
        return None
    if log.topics[0] != TRANSFER_TOPIC:
        return None
    sender, recipient = _topic_address(log.topics[1]), _topic_address(log.topics[2])
    amount = int.from_bytes(log.data, "big")
    if sender is None or recipient is None or amount == 0:
        return None
    return _Candidate(
        block=block,
        txid=log.transaction_hash,
        tx_index=tx_index[log.transaction_hash],
        log_index=log.log_index,
        internal=None,
        to_address=recipient,
        from_address=sender,
        asset=token.symbol,
        amount=amount,
        token_contract=token.contract.lower(),
    )


def _topic_address(topic: str) -> str | None:
    """The address in an indexed address topic, or None when the padding is not zero."""
    if topic[2:26] != _ADDRESS_PADDING:
        return None
    return "0x" + topic[26:]


class _Receipts:
    """Receipts read from one node, each checked to name its transaction and block, and
    to carry its logs. Each transaction's receipt is asked for once per scan."""

    def __init__(self, node: NodeEndpoint) -> None:
        self._node = node
        self._known: dict[str, NodeReceipt] = {}

    async def fetch(self, block_of: Mapping[str, BlockRef]) -> None:
        txids = sorted(t for t in block_of if t not in self._known)
        answers = await self._node.batch([("eth_getTransactionReceipt", [t]) for t in txids])
        label = self._node.label
        for txid, answer in zip(txids, answers, strict=True):
            receipt = parse.receipt(answer, f"receipt of {txid}")
            block = block_of[txid]
            if receipt.transaction_hash != txid:
                raise BadNodeAnswer(f"{label}: asked for the receipt of {txid}, got another")
            if receipt.block_hash != block.hash or receipt.block_number != block.number:
                raise BadNodeAnswer(f"{label}: receipt of {txid} names another block")
            if receipt.logs is None:
                raise BadNodeAnswer(f"{label}: receipt of {txid} has no logs member")
            if any(
                log.transaction_hash != txid or log.block_hash != block.hash for log in receipt.logs
            ):
                raise BadNodeAnswer(f"{label}: a log in the receipt of {txid} names another")
            self._known[txid] = receipt

    def of(self, txid: str) -> NodeReceipt:
        return self._known[txid]


def _credits(
    node: NodeEndpoint,
    candidate: _Candidate,
    proven: Evidence,
    transaction: NodeTransaction,
    traces: Mapping[str, TransactionTrace],
) -> bool:
    """Whether the candidate credits: its transaction succeeded per the evidence's receipt;
    for a token, that receipt holds the very log we found (else the log list was made up);
    for an internal transfer, the trace agrees with the transaction it claims to trace."""
    receipt = proven.receipts[candidate.txid]
    if candidate.internal is not None:
        trace = traces[candidate.txid]
        _check_trace_matches(node, candidate, trace, transaction, receipt, proven)
    if receipt.status != 1:
        return False
    if candidate.log_index is not None and not any(
        log.log_index == candidate.log_index
        and log.address == candidate.token_contract
        and _token_log_pays(log, candidate)
        for log in receipt.logs or ()
    ):
        raise BadNodeAnswer(
            f"{node.label}: log {candidate.log_index} of {candidate.txid} is not in its receipt"
        )
    return True


def _check_trace_matches(
    node: NodeEndpoint,
    candidate: _Candidate,
    trace: TransactionTrace,
    transaction: NodeTransaction,
    receipt: NodeReceipt,
    proven: Evidence,
) -> None:
    # The trace is the node's word; its top call must be the transaction the evidence holds
    # (same signer, callee, value) and fail exactly when the receipt says it failed.
    signer = proven.senders.get(candidate.txid, transaction.from_address)
    callee = transaction.to_address
    if (
        trace.from_address != signer
        or (callee is not None and trace.to_address != callee)
        or trace.value != transaction.value
    ):
        raise BadNodeAnswer(f"{node.label}: the trace of {candidate.txid} is of another call")
    if trace.failed != (receipt.status != 1):
        raise BadNodeAnswer(f"{node.label}: the trace of {candidate.txid} contradicts its receipt")


def _token_log_pays(log: NodeLog, candidate: _Candidate) -> bool:
    return (
        len(log.topics) == 3
        and log.topics[0] == TRANSFER_TOPIC
        and _topic_address(log.topics[1]) == candidate.from_address
        and _topic_address(log.topics[2]) == candidate.to_address
        and int.from_bytes(log.data, "big") == candidate.amount
    )
