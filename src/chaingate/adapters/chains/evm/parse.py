"""Strict parsing of EVM node answers.

A node is untrusted input: every field the tracker relies on is checked for type and shape here,
and anything malformed raises BadNodeAnswer (a NodeUnavailable) so the caller tries another node
and never advances its cursor on garbage. Addresses and hashes come out in the project's
canonical form: lower-case 0x-hex.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaingate.adapters.chains.evm.bloom import BLOOM_BYTES
from chaingate.domain.chain import BlockRef, NodeUnavailable

_QUANTITY = re.compile(r"0x(?:0|[1-9a-fA-F][0-9a-fA-F]*)")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")

# A quantity above 2**256 cannot come from an EVM; a huge hex string is only a way to burn CPU.
_MAX_QUANTITY_DIGITS = 64
# Far beyond any real chain; keeps a hostile timestamp from overflowing datetime.
_MAX_TIMESTAMP = 2**40


class BadNodeAnswer(NodeUnavailable):
    """The node answered, but not with something a correct node would say."""


def quantity(value: object, what: str) -> int:
    """An EVM quantity: `0x` + hex without leading zeros ("0x0" for zero)."""
    if not isinstance(value, str) or len(value) > 2 + _MAX_QUANTITY_DIGITS:
        raise BadNodeAnswer(f"{what}: expected a hex quantity, got {_show(value)}")
    if _QUANTITY.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: malformed hex quantity {_show(value)}")
    return int(value, 16)


def hash32(value: object, what: str) -> str:
    """A 32-byte hash as lower-case 0x-hex."""
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: expected a 32-byte hash, got {_show(value)}")
    return value.lower()


def address(value: object, what: str) -> str:
    """A 20-byte address as lower-case 0x-hex (checksummed input is accepted, not verified)."""
    if not isinstance(value, str) or _ADDRESS.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: expected a 20-byte address, got {_show(value)}")
    return value.lower()


def data(value: object, what: str) -> bytes:
    """Unformatted byte data: `0x` + an even number of hex digits."""
    if not isinstance(value, str) or _DATA.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: expected hex data, got {_show(value)}")
    return bytes.fromhex(value[2:])


def is_address(value: str) -> bool:
    """True for a 0x-prefixed 20-byte hex address in any letter case."""
    return _ADDRESS.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class NodeTransaction:
    """The fields of a transaction the scanner uses."""

    hash: str
    from_address: str
    to_address: str | None  # None for contract creation
    value: int
    index: int


@dataclass(frozen=True, slots=True)
class NodeBlock:
    """A block as the node described it, already checked for shape."""

    ref: BlockRef
    logs_bloom: bytes
    transactions: tuple[NodeTransaction, ...]  # empty when fetched without full transactions


@dataclass(frozen=True, slots=True)
class NodeLog:
    address: str
    topics: tuple[str, ...]
    data: bytes
    block_hash: str
    block_number: int
    transaction_hash: str
    log_index: int
    removed: bool


@dataclass(frozen=True, slots=True)
class NodeReceipt:
    transaction_hash: str
    block_hash: str
    block_number: int
    status: int  # 1 success, 0 reverted
    contract_address: str | None
    logs: tuple[NodeLog, ...] | None  # None when the node left them out


def block(value: object, *, full_transactions: bool) -> NodeBlock | None:
    """A block object, or None for JSON null (the node does not have that block).

    With `full_transactions`, every transaction must be an object that names this block.
    """
    if value is None:
        return None
    obj = _object(value, "block")
    number = quantity(obj.get("number"), "block.number")
    block_hash = hash32(obj.get("hash"), "block.hash")
    timestamp = quantity(obj.get("timestamp"), "block.timestamp")
    if timestamp > _MAX_TIMESTAMP:
        raise BadNodeAnswer(f"block.timestamp: implausible value {timestamp}")
    bloom = data(obj.get("logsBloom"), "block.logsBloom")
    if len(bloom) != BLOOM_BYTES:
        raise BadNodeAnswer(f"block.logsBloom: expected {BLOOM_BYTES} bytes, got {len(bloom)}")
    ref = BlockRef(
        number=number,
        hash=block_hash,
        parent_hash=hash32(obj.get("parentHash"), "block.parentHash"),
        timestamp=datetime.fromtimestamp(timestamp, tz=UTC),
    )
    raw_transactions = obj.get("transactions")
    if not isinstance(raw_transactions, list):
        raise BadNodeAnswer("block.transactions: expected a list")
    transactions: tuple[NodeTransaction, ...] = ()
    if full_transactions:
        transactions = tuple(_transaction(tx, ref) for tx in raw_transactions)
        if len({tx.hash for tx in transactions}) != len(transactions):
            raise BadNodeAnswer(f"block {number}: duplicated transaction hash")
    return NodeBlock(ref=ref, logs_bloom=bloom, transactions=transactions)


def _transaction(value: object, ref: BlockRef) -> NodeTransaction:
    obj = _object(value, "transaction")
    tx_hash = hash32(obj.get("hash"), "transaction.hash")
    # A transaction object that names another block means the node mixed two views of the chain.
    if hash32(obj.get("blockHash"), "transaction.blockHash") != ref.hash:
        raise BadNodeAnswer(f"transaction {tx_hash} names another block than {ref.hash}")
    if quantity(obj.get("blockNumber"), "transaction.blockNumber") != ref.number:
        raise BadNodeAnswer(f"transaction {tx_hash} names another height than {ref.number}")
    to_raw = obj.get("to")
    return NodeTransaction(
        hash=tx_hash,
        from_address=address(obj.get("from"), "transaction.from"),
        to_address=None if to_raw is None else address(to_raw, "transaction.to"),
        value=quantity(obj.get("value"), "transaction.value"),
        index=quantity(obj.get("transactionIndex"), "transaction.transactionIndex"),
    )


def logs(value: object) -> tuple[NodeLog, ...]:
    """The answer of eth_getLogs: a list of log objects."""
    if not isinstance(value, list):
        raise BadNodeAnswer(f"logs: expected a list, got {_show(value)}")
    return tuple(log(item) for item in value)


def log(value: object) -> NodeLog:
    obj = _object(value, "log")
    raw_topics = obj.get("topics")
    if not isinstance(raw_topics, list) or len(raw_topics) > 4:
        raise BadNodeAnswer("log.topics: expected a list of at most 4 hashes")
    removed = obj.get("removed", False)
    if not isinstance(removed, bool):
        raise BadNodeAnswer(f"log.removed: expected a boolean, got {_show(removed)}")
    return NodeLog(
        address=address(obj.get("address"), "log.address"),
        topics=tuple(hash32(topic, "log.topics[]") for topic in raw_topics),
        data=data(obj.get("data"), "log.data"),
        block_hash=hash32(obj.get("blockHash"), "log.blockHash"),
        block_number=quantity(obj.get("blockNumber"), "log.blockNumber"),
        transaction_hash=hash32(obj.get("transactionHash"), "log.transactionHash"),
        log_index=quantity(obj.get("logIndex"), "log.logIndex"),
        removed=removed,
    )


def receipt(value: object, what: str) -> NodeReceipt:
    """A transaction receipt. Null is refused: callers ask only for mined transactions."""
    if value is None:
        raise BadNodeAnswer(f"{what}: node has no receipt for a transaction it reported mined")
    obj = _object(value, "receipt")
    status = quantity(obj.get("status"), "receipt.status")
    if status not in (0, 1):
        raise BadNodeAnswer(f"receipt.status: expected 0 or 1, got {status}")
    contract_raw = obj.get("contractAddress")
    raw_logs = obj.get("logs")
    return NodeReceipt(
        transaction_hash=hash32(obj.get("transactionHash"), "receipt.transactionHash"),
        block_hash=hash32(obj.get("blockHash"), "receipt.blockHash"),
        block_number=quantity(obj.get("blockNumber"), "receipt.blockNumber"),
        status=status,
        contract_address=(
            None if contract_raw is None else address(contract_raw, "receipt.contractAddress")
        ),
        logs=None if raw_logs is None else logs(raw_logs),
    )


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadNodeAnswer(f"{what}: expected an object, got {_show(value)}")
    return value


def _show(value: object) -> str:
    """A short, log-safe rendering of an unexpected value (a hostile node controls it)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
