"""A block's hash must be the hash of its own header.

A node can claim any hash. It is evidence only when it equals keccak-256 of the RLP-encoded
header sent along with it: that ties the parentHash (the chain's links) and the logsBloom (which
blocks the scanner asks for logs) to the hash the next block links to, so one forged field is
caught at once instead of being built upon, or read as a reorg that un-counts real payments.

Networks whose block hash is not computed this way (zkSync Era, Avalanche C-Chain, Celo, ...)
set `verify_block_hashes = false` in their NetworkConfig.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from eth_hash.auto import keccak

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.parse import BadNodeAnswer

_Kind = Literal["hash", "address", "bytes", "int"]

_HEADER: tuple[tuple[str, _Kind], ...] = (
    ("parentHash", "hash"),
    ("sha3Uncles", "hash"),
    ("miner", "address"),
    ("stateRoot", "hash"),
    ("transactionsRoot", "hash"),
    ("receiptsRoot", "hash"),
    ("logsBloom", "bytes"),
    ("difficulty", "int"),
    ("number", "int"),
    ("gasLimit", "int"),
    ("gasUsed", "int"),
    ("timestamp", "int"),
    ("extraData", "bytes"),
    ("mixHash", "hash"),
    ("nonce", "bytes"),
)
# Each fork appended fields (London, Shanghai, Cancun x3, Prague), in this order.
_APPENDED: tuple[tuple[str, _Kind], ...] = (
    ("baseFeePerGas", "int"),
    ("withdrawalsRoot", "hash"),
    ("blobGasUsed", "int"),
    ("excessBlobGas", "int"),
    ("parentBeaconBlockRoot", "hash"),
    ("requestsHash", "hash"),
)


def check_block_hash(block: Mapping[str, Any], label: str) -> None:
    """Raise BadNodeAnswer unless `block["hash"]` is the hash of the header fields beside it."""
    claimed = parse.hash32(block.get("hash"), "block.hash")
    if header_hash(block) != claimed:
        number = block.get("number")
        raise BadNodeAnswer(f"{label}: block {number} has a hash that is not its header's hash")


def header_hash(block: Mapping[str, Any]) -> str:
    """keccak-256 of the RLP-encoded header described by a JSON-RPC block object."""
    # Whichever appended fields are present, in their order (anvil's pre-Shanghai blocks carry
    # the blob fields without withdrawalsRoot). Any field added, dropped or changed changes the
    # hash, so leniency here cannot help a forger.
    fields = [*_HEADER, *((name, kind) for name, kind in _APPENDED if block.get(name) is not None)]
    items = [_field(block.get(name), kind, f"block.{name}") for name, kind in fields]
    return "0x" + keccak(_rlp_list(items)).hex()


def _field(value: object, kind: _Kind, what: str) -> bytes:
    if kind == "int":
        number = parse.quantity(value, what)
        return number.to_bytes((number.bit_length() + 7) // 8, "big")
    if kind == "hash":
        return bytes.fromhex(parse.hash32(value, what)[2:])
    if kind == "address":
        return bytes.fromhex(parse.address(value, what)[2:])
    return parse.data(value, what)


def _rlp_length(length: int, short_base: int) -> bytes:
    if length <= 55:
        return bytes([short_base + length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([short_base + 55 + len(encoded)]) + encoded


def _rlp_list(items: list[bytes]) -> bytes:
    """RLP of a flat list of byte strings (all a header needs)."""
    payload = b"".join(
        item if len(item) == 1 and item[0] < 0x80 else _rlp_length(len(item), 0x80) + item
        for item in items
    )
    return _rlp_length(len(payload), 0xC0) + payload
