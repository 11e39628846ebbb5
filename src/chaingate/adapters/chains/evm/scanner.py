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
4. one is_watched() question with every candidate recipient;
5. receipts of the candidates' transactions: only status 1, in the block we scanned, and (for
   a token) holding the very log we found, counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_hash.auto import keccak

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.bloom import bloom_contains, may_hold_log
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.header import check_block_hash
from chaingate.adapters.chains.evm.parse import BadNodeAnswer, NodeBlock, NodeLog, NodeReceipt
from chaingate.adapters.chains.evm.rpc import NodeEndpoint, RpcCall
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
    to_address: str
    from_address: str
    asset: str
    amount: int
    token_contract: str | None

    def transfer(self) -> Transfer:
        return Transfer(
            txid=self.txid,
            position=NATIVE_POSITION if self.log_index is None else str(self.log_index),
            to_address=self.to_address,
            asset=self.asset,
            amount=self.amount,
            block=self.block,
            from_address=self.from_address,
            token_contract=self.token_contract,
        )

    def sort_key(self) -> tuple[int, int, int]:
        return (self.block.number, self.tx_index, -1 if self.log_index is None else self.log_index)


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
) -> ScanResult:
    """Blocks start..end as this node sees them, and the verified transfers to watched addresses.

    Raises ReorgDetected when block `start` does not extend `parent`, BadNodeAnswer (a
    NodeUnavailable) when the node's answers are malformed or contradict each other.
    """
    blocks = await _linked_blocks(node, start, end, parent, network.verify_block_hashes)
    refs = tuple(b.ref for b in blocks)
    receipts = _Receipts(node)
    candidates = _native_candidates(blocks, network.native_symbol)
    if tokens:
        candidates += await _token_candidates(node, blocks, tokens, receipts)
    if not candidates:
        return ScanResult(blocks=refs, transfers=())

    recipients = {c.to_address for c in candidates}
    # Only what we asked about can be watched, whatever the lookup answers.
    watched = {a.lower() for a in await is_watched(recipients)} & recipients
    paying = [c for c in candidates if c.to_address in watched]
    await receipts.fetch({c.txid: c.block for c in paying})
    transfers = sorted(
        (c for c in paying if _succeeded(node, c, receipts.of(c.txid))), key=_Candidate.sort_key
    )
    return ScanResult(blocks=refs, transfers=tuple(c.transfer() for c in transfers))


async def _linked_blocks(
    node: NodeEndpoint, start: int, end: int, parent: BlockRef | None, verify_hashes: bool
) -> list[NodeBlock]:
    heights = range(start, end + 1)
    answers = await node.batch([("eth_getBlockByNumber", [hex(n), True]) for n in heights])
    blocks: list[NodeBlock] = []
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
    if blocks and parent is not None and blocks[0].ref.parent_hash != parent.hash:
        raise ReorgDetected(parent.number)
    return blocks


def _native_candidates(blocks: list[NodeBlock], asset: str) -> list[_Candidate]:
    return [
        _Candidate(
            block=block.ref,
            txid=tx.hash,
            tx_index=tx.index,
            log_index=None,
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


def _succeeded(node: NodeEndpoint, candidate: _Candidate, receipt: NodeReceipt) -> bool:
    """Whether the candidate's transaction succeeded; for a token, its receipt must hold the
    very log we found (else the log list was made up)."""
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


def _token_log_pays(log: NodeLog, candidate: _Candidate) -> bool:
    return (
        len(log.topics) == 3
        and log.topics[0] == TRANSFER_TOPIC
        and _topic_address(log.topics[1]) == candidate.from_address
        and _topic_address(log.topics[2]) == candidate.to_address
        and int.from_bytes(log.data, "big") == candidate.amount
    )
