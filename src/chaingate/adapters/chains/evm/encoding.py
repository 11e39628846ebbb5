"""Consensus encodings of transactions and receipts, rebuilt from a node's JSON fields.

A block's header commits to these bytes (the transactionsRoot and receiptsRoot tries), so an
encoding rebuilt from JSON that lands on the committed root proves every field it holds; a
field we ignored or mis-read gives another root and the block is refused, never credited.

Covered: legacy (with or without EIP-155), EIP-2930 (type 1), EIP-1559 (2), EIP-4844 (3, as
included in a block: no blobs) and EIP-7702 (4). Any other type (an L2's deposit transactions,
a future fork) raises UnknownEncoding: the caller must find other evidence for that block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import rlp
from eth_hash.auto import keccak
from eth_keys.exceptions import BadSignature
from eth_keys.main import KeyAPI

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.parse import BadNodeAnswer

_Kind = Literal["int", "to", "data", "access_list", "hashes", "authorizations"]

# The signed fields of each typed transaction, in their consensus order (the signature's
# yParity, r and s follow). The names are the JSON-RPC ones.
_FEE_1559: tuple[tuple[str, _Kind], ...] = (
    ("chainId", "int"),
    ("nonce", "int"),
    ("maxPriorityFeePerGas", "int"),
    ("maxFeePerGas", "int"),
    ("gas", "int"),
    ("to", "to"),
    ("value", "int"),
    ("input", "data"),
    ("accessList", "access_list"),
)
_TYPED: dict[int, tuple[tuple[str, _Kind], ...]] = {
    1: (
        ("chainId", "int"),
        ("nonce", "int"),
        ("gasPrice", "int"),
        ("gas", "int"),
        ("to", "to"),
        ("value", "int"),
        ("input", "data"),
        ("accessList", "access_list"),
    ),
    2: _FEE_1559,
    3: (*_FEE_1559, ("maxFeePerBlobGas", "int"), ("blobVersionedHashes", "hashes")),
    4: (*_FEE_1559, ("authorizationList", "authorizations")),
}
_LEGACY: tuple[tuple[str, _Kind], ...] = (
    ("nonce", "int"),
    ("gasPrice", "int"),
    ("gas", "int"),
    ("to", "to"),
    ("value", "int"),
    ("input", "data"),
)
KNOWN_TYPES = frozenset({0, *_TYPED})
_MAX_LIST = 100_000  # far above what fits in a block; a longer list is a way to burn memory


class UnknownEncoding(Exception):
    """A transaction or receipt type whose encoding we do not know (not a bad answer)."""

    def __init__(self, tx_type: int) -> None:
        super().__init__(f"transaction type {tx_type:#x}")
        self.tx_type = tx_type


def tx_type(obj: Mapping[str, Any], what: str) -> int:
    """The EIP-2718 type of a transaction or receipt object (absent: legacy)."""
    raw = obj.get("type")
    return 0 if raw is None else parse.quantity(raw, f"{what}.type")


def encode_transaction(tx: Mapping[str, Any]) -> bytes:
    """The transaction's consensus bytes (its hash is their keccak-256).

    Raises UnknownEncoding for a type we cannot rebuild, BadNodeAnswer for malformed fields.
    """
    kind = tx_type(tx, "transaction")
    if kind == 0:
        fields = [_field(tx, name, k) for name, k in _LEGACY]
        signature = [_int(tx, "v"), _int(tx, "r"), _int(tx, "s")]
        return bytes(rlp.encode([*fields, *signature]))
    layout = _TYPED.get(kind)
    if layout is None:
        raise UnknownEncoding(kind)
    fields = [_field(tx, name, k) for name, k in layout]
    signature = [_y_parity(tx, "transaction"), _int(tx, "r"), _int(tx, "s")]
    return bytes([kind]) + bytes(rlp.encode([*fields, *signature]))


def encode_receipt(receipt: Mapping[str, Any]) -> bytes:
    """The receipt's consensus bytes: [status, cumulativeGasUsed, logsBloom, logs], typed like
    its transaction. Raises UnknownEncoding, BadNodeAnswer."""
    kind = tx_type(receipt, "receipt")
    if kind not in KNOWN_TYPES:
        raise UnknownEncoding(kind)
    raw_logs = receipt.get("logs")
    if not isinstance(raw_logs, list) or len(raw_logs) > _MAX_LIST:
        raise BadNodeAnswer("receipt.logs: expected a list")
    logs = [
        [
            _bytes(parse.address(log.get("address"), "log.address")),
            [_bytes(parse.hash32(t, "log.topics[]")) for t in _list(log.get("topics"), "topics")],
            parse.data(log.get("data"), "log.data"),
        ]
        for log in (_object(item, "receipt.logs[]") for item in raw_logs)
    ]
    body = [
        _int(receipt, "status"),
        _int(receipt, "cumulativeGasUsed"),
        parse.data(receipt.get("logsBloom"), "receipt.logsBloom"),
        logs,
    ]
    encoded = bytes(rlp.encode(body))
    return encoded if kind == 0 else bytes([kind]) + encoded


def transaction_hash(encoded: bytes) -> str:
    return "0x" + keccak(encoded).hex()


def sender(encoded: bytes) -> str:
    """The address that signed the transaction (encoded by `encode_transaction`).

    Raises BadNodeAnswer when the signature recovers no key.
    """
    if encoded[0] >= 0xC0:  # legacy: an RLP list
        items = rlp.decode(encoded)
        v, r, s = (int.from_bytes(x, "big") for x in items[6:9])
        if v in (27, 28):
            payload, recovery = bytes(rlp.encode(items[:6])), v - 27
        else:  # EIP-155: v = chainId * 2 + 35 + recovery id
            chain_id, recovery = divmod(v - 35, 2)
            payload = bytes(rlp.encode([*items[:6], chain_id, 0, 0]))
    else:
        items = rlp.decode(encoded[1:])
        recovery, r, s = (int.from_bytes(x, "big") for x in items[-3:])
        payload = encoded[:1] + bytes(rlp.encode(items[:-3]))
    try:
        signature = KeyAPI.Signature(vrs=(recovery, r, s))
        public = signature.recover_public_key_from_msg_hash(keccak(payload))
    except (BadSignature, ValueError) as exc:
        raise BadNodeAnswer(f"transaction signature recovers no key: {exc}") from exc
    return "0x" + public.to_canonical_address().hex()


def _field(obj: Mapping[str, Any], name: str, kind: _Kind) -> object:
    what = f"transaction.{name}"
    value = obj.get(name)
    if kind == "int":
        return parse.quantity(value, what)
    if kind == "to":
        return b"" if value is None else _bytes(parse.address(value, what))
    if kind == "data":
        return parse.data(value, what)
    if kind == "hashes":
        return [_bytes(parse.hash32(h, f"{what}[]")) for h in _list(value, what)]
    if kind == "access_list":
        return [
            [
                _bytes(parse.address(entry.get("address"), f"{what}[].address")),
                [
                    _bytes(parse.hash32(key, f"{what}[].storageKeys[]"))
                    for key in _list(entry.get("storageKeys"), f"{what}[].storageKeys")
                ],
            ]
            for entry in (_object(item, what) for item in _list(value, what))
        ]
    return [
        [
            parse.quantity(auth.get("chainId"), f"{what}[].chainId"),
            _bytes(parse.address(auth.get("address"), f"{what}[].address")),
            parse.quantity(auth.get("nonce"), f"{what}[].nonce"),
            _y_parity(auth, f"{what}[]"),
            parse.quantity(auth.get("r"), f"{what}[].r"),
            parse.quantity(auth.get("s"), f"{what}[].s"),
        ]
        for auth in (_object(item, what) for item in _list(value, what))
    ]


def _y_parity(obj: Mapping[str, Any], what: str) -> int:
    # Typed transactions carry yParity; older nodes only say `v`, which then equals it.
    raw = obj.get("yParity", obj.get("v"))
    parity = parse.quantity(raw, f"{what}.yParity")
    if parity not in (0, 1):
        raise BadNodeAnswer(f"{what}.yParity: expected 0 or 1, got {parity}")
    if "yParity" in obj and "v" in obj and parse.quantity(obj["v"], f"{what}.v") != parity:
        raise BadNodeAnswer(f"{what}: v and yParity disagree")
    return parity


def _int(obj: Mapping[str, Any], name: str) -> int:
    return parse.quantity(obj.get(name), name)


def _bytes(hex_value: str) -> bytes:
    return bytes.fromhex(hex_value[2:])


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list) or len(value) > _MAX_LIST:
        raise BadNodeAnswer(f"{what}: expected a list")
    return value


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadNodeAnswer(f"{what}: expected an object")
    return value
