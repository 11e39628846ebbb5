"""Proof that a block's transactions and receipts are the ones its header commits to.

The header's hash is checked (header.py), but a header only commits to its transactions and
receipts through two Merkle-Patricia trie roots. A node could otherwise append a made-up
transfer to a real block, change a value or add a log, and answer its receipt with status 1:
the block hash would still be right, and no later honest answer would ever take the payment
back. Here every transaction and receipt of the block is re-encoded from the node's JSON
(encoding.py), the two tries are rebuilt with the `trie` library, and their roots must equal
the header's. Only then do the transaction fields, statuses and logs count.

Cost: two tries over the whole block (about 20 ms for 200 transactions) plus one
eth_getBlockReceipts call, so the scanner proves only blocks holding a payment it would credit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from trie.hexary import HexaryTrie

from chaingate.adapters.chains.evm import encoding, parse
from chaingate.adapters.chains.evm.encoding import UnknownEncoding
from chaingate.adapters.chains.evm.parse import BadNodeAnswer, NodeReceipt

__all__ = ["BlobForms", "ProvenBlock", "UnknownEncoding", "prove_block", "trie_root"]

_BLOB_TYPE = 3


class BlobForms(Exception):
    """The transactions root misses, and the block holds blob transactions: some nodes (anvil)
    commit those in their network form (with the blob sidecar), which JSON does not carry.
    The caller may fetch these transactions' raw bytes and call prove_block again."""

    def __init__(self, txids: list[str]) -> None:
        super().__init__(f"{len(txids)} blob transactions")
        self.txids = txids


@dataclass(frozen=True, slots=True)
class ProvenBlock:
    """What a block holds, proven against its header's roots."""

    block_hash: str
    receipts: Mapping[str, NodeReceipt]  # by txid, every transaction of the block
    senders: Mapping[str, str]  # by txid: the signer, recovered, of the transactions asked for


def trie_root(values: Sequence[bytes]) -> str:
    """The root of the trie keyed by rlp(index), as transactionsRoot and receiptsRoot are."""
    trie = HexaryTrie(db={})
    with trie.squash_changes() as batch:
        for index, value in enumerate(values):
            batch[bytes(rlp.encode(index))] = value
    return "0x" + trie.root_hash.hex()


def prove_block(
    block: Mapping[str, Any],
    receipts: object,
    label: str,
    senders_of: Collection[str] = (),
    blob_forms: Mapping[str, bytes] | None = None,
) -> ProvenBlock:
    """Check a full-transaction block object and its receipts (an eth_getBlockReceipts answer)
    against the block's transactionsRoot and receiptsRoot.

    The block's header hash must have been verified already. Raises UnknownEncoding when the
    block holds a transaction or receipt type we cannot re-encode, BadNodeAnswer when anything
    differs from what the header commits to.
    """
    block_hash = parse.hash32(block.get("hash"), "block.hash")
    number = parse.quantity(block.get("number"), "block.number")
    txs = block.get("transactions")
    if not isinstance(txs, list):
        raise BadNodeAnswer(f"{label}: block {number} has no transaction list")
    encoded: list[bytes] = []
    txids: list[str] = []
    for index, tx in enumerate(txs):
        if not isinstance(tx, dict):
            raise BadNodeAnswer(f"{label}: block {number}: transaction {index} is not an object")
        raw = encoding.encode_transaction(tx)
        txid = encoding.transaction_hash(raw)
        if parse.hash32(tx.get("hash"), "transaction.hash") != txid:
            raise BadNodeAnswer(f"{label}: transaction {index} of block {number} is not its hash")
        if parse.quantity(tx.get("transactionIndex"), "transactionIndex") != index:
            raise BadNodeAnswer(f"{label}: transaction {txid} is listed out of its place")
        encoded.append(raw)
        txids.append(txid)
    committed = [
        _network_form(raw, blob_forms[txid], label) if blob_forms and txid in blob_forms else raw
        for raw, txid in zip(encoded, txids, strict=True)
    ]
    if trie_root(committed) != parse.hash32(block.get("transactionsRoot"), "transactionsRoot"):
        blobs = [t for raw, t in zip(encoded, txids, strict=True) if raw[0] == _BLOB_TYPE]
        if blobs and blob_forms is None:
            raise BlobForms(blobs)
        raise BadNodeAnswer(
            f"{label}: the transactions of block {number} are not those its header commits to"
        )
    receipts_root = parse.hash32(block.get("receiptsRoot"), "receiptsRoot")
    proven = _proven_receipts(receipts, txs, txids, (block_hash, number, receipts_root), label)
    senders: dict[str, str] = {}
    for index, txid in enumerate(txids):
        if txid in senders_of:
            senders[txid] = encoding.sender(encoded[index])
            if parse.address(txs[index].get("from"), "transaction.from") != senders[txid]:
                raise BadNodeAnswer(f"{label}: transaction {txid} names another sender")
    return ProvenBlock(block_hash=block_hash, receipts=proven, senders=senders)


def _network_form(minimal: bytes, wrapped: bytes, label: str) -> bytes:
    """`wrapped` if it is `minimal` with a blob sidecar (0x03 || rlp([body, *sidecar]))."""
    try:
        items = rlp.decode(wrapped[1:]) if wrapped[:1] == bytes([_BLOB_TYPE]) else None
    except rlp.DecodingError as exc:
        raise BadNodeAnswer(f"{label}: a raw blob transaction does not decode") from exc
    if not isinstance(items, list) or not items or rlp.encode(items[0]) != minimal[1:]:
        raise BadNodeAnswer(f"{label}: a raw blob transaction is not the one in the block")
    return wrapped


def _proven_receipts(
    answer: object,
    txs: list[Any],
    txids: list[str],
    header: tuple[str, int, str],
    label: str,
) -> dict[str, NodeReceipt]:
    block_hash, number, receipts_root = header
    if not isinstance(answer, list) or len(answer) != len(txids):
        raise BadNodeAnswer(f"{label}: block {number}: one receipt per transaction expected")
    encoded: list[bytes] = []
    proven: dict[str, NodeReceipt] = {}
    next_log_index = 0
    for index, (raw, txid) in enumerate(zip(answer, txids, strict=True)):
        receipt = parse.receipt(raw, f"receipt {index} of block {number}")
        if not isinstance(raw, dict):  # parse.receipt refused it already; for the type checker
            raise BadNodeAnswer(f"{label}: receipt {index} of block {number} is not an object")
        if receipt.transaction_hash != txid:
            raise BadNodeAnswer(f"{label}: receipt {index} of block {number} is another's")
        if receipt.block_hash != block_hash or receipt.block_number != number:
            raise BadNodeAnswer(f"{label}: receipt of {txid} names another block")
        if encoding.tx_type(raw, "receipt") != encoding.tx_type(txs[index], "transaction"):
            raise BadNodeAnswer(f"{label}: receipt of {txid} has another type than its tx")
        for log in receipt.logs or ():
            # Log positions are not in the trie: they follow from the proven order.
            if log.log_index != next_log_index:
                raise BadNodeAnswer(f"{label}: log {log.log_index} of {txid} is out of place")
            if log.transaction_hash != txid or log.block_hash != block_hash or log.removed:
                raise BadNodeAnswer(f"{label}: a log in the receipt of {txid} names another")
            next_log_index += 1
        encoded.append(encoding.encode_receipt(raw))
        proven[txid] = receipt
    if trie_root(encoded) != receipts_root:
        raise BadNodeAnswer(
            f"{label}: the receipts of block {number} are not those its header commits to"
        )
    return proven
