"""What a payment found on one node must pass before it credits (`payment_proof`).

- "roots" (default): the block's transactions and receipts are rebuilt into the tries its
  verified header commits to (proof.py). The transaction's fields, its signer, its status
  and its logs are then the chain's, not the node's word. ETH moved by a contract's call
  (a trace, which no root covers) must also fit the recipient's balance growth, proven
  against the stateRoots of the block and its parent (balances.py).
- Where the block cannot be rebuilt (a transaction type we cannot encode: an L2's deposits,
  a future fork), where the balance cannot tell (the node keeps no state that old, or the
  recipient itself sent a transaction), or with "two_nodes": another node of the network's
  `rpc_urls` must give the same transactions, receipts and traces. With one node only, or
  no second node answering alike, nothing in that block credits: NodeUnavailable, and the
  tracker tries again later.

Only blocks holding a payment to a watched address are examined: the cost is per paying
block (one eth_getBlockReceipts call and two tries), not per scanned block.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaingate.adapters.chains.evm import balances, parse, proof
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.header import check_block_hash
from chaingate.adapters.chains.evm.parse import BadNodeAnswer, NodeReceipt, NodeTransaction
from chaingate.adapters.chains.evm.rpc import NodeEndpoint, RpcCall, RpcError
from chaingate.adapters.chains.evm.traces import (
    InternalTransfer,
    Tracer,
    transaction_trace,
    transaction_trace_request,
)
from chaingate.domain.chain import NodeUnavailable

log = logging.getLogger(__name__)

_METHOD_NOT_FOUND = -32601


@dataclass(frozen=True, slots=True)
class Evidence:
    """A paying block's receipts (every paying transaction's) and the signers we proved."""

    receipts: Mapping[str, NodeReceipt]
    senders: Mapping[str, str]  # by txid; empty where the signer is a node's word


@dataclass(slots=True)
class PayingBlock:
    """A block with candidate payments to watched addresses, as the scanning node sent it."""

    block: parse.NodeBlock
    answer: Mapping[str, Any]  # the full-transaction JSON the block was parsed from
    parent: Mapping[str, Any] | None  # the parent block's JSON, when it was scanned too
    txids: set[str] = field(default_factory=set)  # transactions with a payment
    signed_by_payer: set[str] = field(default_factory=set)  # native / internal: want the signer
    traced: dict[str, tuple[InternalTransfer, ...]] = field(default_factory=dict)
    # ETH to watched addresses (txid, recipient, amount): direct and by contract calls
    ether: list[tuple[str, str, int]] = field(default_factory=list)
    internal_recipients: set[str] = field(default_factory=set)


class UnconfirmedPayment(NodeUnavailable):
    """A block pays a watched address, but no second node confirmed what the first said."""


async def gather(
    node: NodeEndpoint,
    witnesses: Sequence[NodeEndpoint],
    network: EvmNetworkConfig,
    tracer: Tracer | None,
    paying: Sequence[PayingBlock],
) -> dict[str, Evidence]:
    """Evidence for each paying block, by block hash.

    Raises BadNodeAnswer when the node's answers contradict the header, UnconfirmedPayment when
    a second node is needed and none agreed.
    """
    proven: dict[str, Evidence] = {}
    if network.payment_proof == "roots" or network.verify_block_hashes:
        proven = await _by_roots(node, paying)
    found: dict[str, Evidence] = dict(proven)
    unproven = [p for p in paying if p.block.ref.hash not in proven]
    own = await _own_receipts(node, unproven) if unproven else {}
    for block in unproven:
        found[block.block.ref.hash] = Evidence({t: own[t] for t in block.txids}, senders={})
    for block in paying:
        settled = block.block.ref.hash in proven and (
            not block.internal_recipients or await _balances_cover(node, block, found)
        )
        if not settled or network.payment_proof == "two_nodes":
            await _witnessed(node, witnesses, network, tracer, block, found[block.block.ref.hash])
    return found


async def _balances_cover(
    node: NodeEndpoint, paying: PayingBlock, found: Mapping[str, Evidence]
) -> bool:
    """Whether the proven balance growth of every recipient of a contract's payment covers the
    ETH it would be credited in the block. False when the state cannot tell; raises
    BadNodeAnswer when it contradicts the traces."""
    ref = paying.block.ref
    receipts = found[ref.hash].receipts
    roots = (
        await _parent_state_root(node, paying),
        parse.hash32(paying.answer.get("stateRoot"), "block.stateRoot"),
    )
    for recipient in sorted(paying.internal_recipients):
        credited = sum(
            amount
            for txid, to, amount in paying.ether
            if to == recipient and receipts[txid].status == 1
        )
        try:
            received = await balances.received_in_block(node, recipient, ref.number, roots)
        except RpcError as exc:  # typically: no state kept for that block
            log.info("%s: no state proof for block %d: %s", node.label, ref.number, exc)
            return False
        if received is None:
            return False
        if received < credited:
            raise BadNodeAnswer(
                f"{node.label}: block {ref.number} would credit {recipient} {credited} wei, "
                f"but its proven balance grew by {received}: the traces were made up"
            )
    return True


async def _parent_state_root(node: NodeEndpoint, paying: PayingBlock) -> str:
    parent = paying.parent
    if parent is None:
        parent_hash = paying.block.ref.parent_hash
        parent = await node.call("eth_getBlockByHash", [parent_hash, False])
        if not isinstance(parent, dict) or parse.hash32(parent.get("hash"), "hash") != parent_hash:
            raise BadNodeAnswer(f"{node.label}: no parent block {parent_hash}")
        check_block_hash(parent, node.label)
    return parse.hash32(parent.get("stateRoot"), "block.stateRoot")


async def _by_roots(node: NodeEndpoint, paying: Sequence[PayingBlock]) -> dict[str, Evidence]:
    """Evidence for the paying blocks whose encoding we can rebuild (the others are left out)."""
    answers = await _block_receipts(node, paying)
    evidence: dict[str, Evidence] = {}
    for block, receipts in zip(paying, answers, strict=True):
        try:
            try:
                proven = proof.prove_block(
                    block.answer, receipts, node.label, block.signed_by_payer
                )
            except proof.BlobForms as exc:
                forms = await _raw_transactions(node, exc.txids)
                proven = proof.prove_block(
                    block.answer, receipts, node.label, block.signed_by_payer, forms
                )
        except proof.UnknownEncoding as exc:
            log.info(
                "%s: block %d holds %s, which cannot be checked against its header: a second "
                "node must confirm its payments",
                node.label,
                block.block.ref.number,
                exc,
            )
            continue
        evidence[block.block.ref.hash] = Evidence(proven.receipts, proven.senders)
    return evidence


async def _block_receipts(node: NodeEndpoint, paying: Sequence[PayingBlock]) -> list[Any]:
    """Every receipt of each block: eth_getBlockReceipts, or one call per transaction where
    the node does not have that method."""
    try:
        return await node.batch([("eth_getBlockReceipts", [p.block.ref.hash]) for p in paying])
    except RpcError as exc:
        if exc.code != _METHOD_NOT_FOUND:
            raise
    answers: list[Any] = []
    for block in paying:
        calls: list[RpcCall] = [
            ("eth_getTransactionReceipt", [tx.hash]) for tx in block.block.transactions
        ]
        answers.append(await node.batch(calls))
    return answers


async def _raw_transactions(node: NodeEndpoint, txids: list[str]) -> dict[str, bytes]:
    answers = await node.batch([("eth_getRawTransactionByHash", [t]) for t in txids])
    return {t: parse.data(a, "raw transaction") for t, a in zip(txids, answers, strict=True)}


async def _own_receipts(
    node: NodeEndpoint, paying: Sequence[PayingBlock]
) -> dict[str, NodeReceipt]:
    wanted = [(t, p.block.ref) for p in paying for t in sorted(p.txids)]
    answers = await node.batch([("eth_getTransactionReceipt", [t]) for t, _ in wanted])
    receipts: dict[str, NodeReceipt] = {}
    for (txid, ref), answer in zip(wanted, answers, strict=True):
        receipt = _checked_receipt(answer, txid, ref, node.label)
        receipts[txid] = receipt
    return receipts


def _checked_receipt(answer: object, txid: str, ref: Any, label: str) -> NodeReceipt:
    receipt = parse.receipt(answer, f"receipt of {txid}")
    if receipt.transaction_hash != txid:
        raise BadNodeAnswer(f"{label}: asked for the receipt of {txid}, got another")
    if receipt.block_hash != ref.hash or receipt.block_number != ref.number:
        raise BadNodeAnswer(f"{label}: receipt of {txid} names another block")
    if receipt.logs is None:
        raise BadNodeAnswer(f"{label}: receipt of {txid} has no logs member")
    if any(log.transaction_hash != txid or log.block_hash != ref.hash for log in receipt.logs):
        raise BadNodeAnswer(f"{label}: a log in the receipt of {txid} names another")
    return receipt


@dataclass(frozen=True, slots=True)
class _Testimony:
    """What one node says about one paying transaction."""

    transaction: NodeTransaction
    status: int
    logs: tuple[parse.NodeLog, ...]
    transfers: tuple[InternalTransfer, ...] | None  # None: not traced


async def _witnessed(
    node: NodeEndpoint,
    witnesses: Sequence[NodeEndpoint],
    network: EvmNetworkConfig,
    tracer: Tracer | None,
    paying: PayingBlock,
    evidence: Evidence,
) -> None:
    """Return when another node says the same about the block's paying transactions."""
    ref = paying.block.ref
    by_hash = {tx.hash: tx for tx in paying.block.transactions}
    ours = {
        txid: _Testimony(
            by_hash[txid],
            evidence.receipts[txid].status,
            evidence.receipts[txid].logs or (),
            paying.traced.get(txid),
        )
        for txid in paying.txids
    }
    reasons: list[str] = []
    for witness in witnesses:
        try:
            theirs = await _testimony(witness, network, tracer, paying)
        except (NodeUnavailable, RpcError) as exc:
            reasons.append(f"{witness.label}: {exc}")
            continue
        if theirs == ours:
            return  # two nodes say the same
        reasons.append(f"{witness.label} disagrees with {node.label}")
    raise UnconfirmedPayment(
        f"block {ref.number} ({ref.hash}) pays a watched address and needs a second node's "
        f"agreement (payment_proof = {network.payment_proof!r}), which it does not have: "
        + ("; ".join(reasons) if reasons else "the network has only one node in rpc_urls")
    )


async def _testimony(
    witness: NodeEndpoint, network: EvmNetworkConfig, tracer: Tracer | None, paying: PayingBlock
) -> dict[str, _Testimony]:
    ref = paying.block.ref
    answer = await witness.call("eth_getBlockByHash", [ref.hash, True])
    block = parse.block(answer, full_transactions=True)
    if block is None or block.ref != ref:
        raise NodeUnavailable(f"{witness.label} does not have block {ref.number} ({ref.hash})")
    if network.verify_block_hashes and isinstance(answer, dict):
        check_block_hash(answer, witness.label)
    by_hash = {tx.hash: tx for tx in block.transactions}
    txids = sorted(paying.txids)
    if any(t not in by_hash for t in txids):
        raise NodeUnavailable(f"{witness.label}: block {ref.number} lacks a paying transaction")
    receipts = await witness.batch([("eth_getTransactionReceipt", [t]) for t in txids])
    traced = [t for t in txids if t in paying.traced]
    traces: dict[str, tuple[InternalTransfer, ...]] = {}
    if traced and tracer is not None:
        calls = [transaction_trace_request(tracer, t) for t in traced]
        for txid, trace in zip(traced, await witness.batch(calls), strict=True):
            traces[txid] = transaction_trace(tracer, trace, txid).transfers
    testimony: dict[str, _Testimony] = {}
    for txid, raw in zip(txids, receipts, strict=True):
        receipt = _checked_receipt(raw, txid, ref, witness.label)
        testimony[txid] = _Testimony(
            by_hash[txid], receipt.status, receipt.logs or (), traces.get(txid)
        )
    return testimony
