"""Consensus encodings rebuilt from JSON (encoding.py) against eth-account's own signed bytes,
the trie root, and trace reading (traces.py). The same code against real anvil blocks of every
type: tests/integration/test_made_up_payments.py and test_evm_client.py."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address

from chaingate.adapters.chains.evm.encoding import (
    UnknownEncoding,
    encode_receipt,
    encode_transaction,
    sender,
    transaction_hash,
)
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.proof import trie_root
from chaingate.adapters.chains.evm.traces import block_traces

KEY = Account.from_key("0x" + "42" * 32)
TO = "0x" + "11" * 20
EMPTY_TRIE = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
FEE = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
ACCESS = [{"address": TO, "storageKeys": ["0x" + "00" * 31 + "07"]}]

CASES: dict[str, dict[str, Any]] = {
    "legacy before EIP-155": {"gasPrice": 10**9},
    "legacy EIP-155": {"gasPrice": 10**9, "chainId": 1},
    "EIP-2930": {"type": 1, "gasPrice": 10**9, "chainId": 1, "accessList": ACCESS},
    "EIP-1559": {"type": 2, "chainId": 1, **FEE, "accessList": ACCESS},
    "EIP-4844": {
        "type": 3,
        "chainId": 1,
        **FEE,
        "maxFeePerBlobGas": 5,
        "blobVersionedHashes": ["0x01" + "ab" * 31],
    },
}


def as_json(fields: dict[str, Any], signed: Any) -> dict[str, Any]:
    """The transaction as a node's JSON-RPC answer shows it."""
    shown: dict[str, Any] = {
        "nonce": hex(fields["nonce"]),
        "to": TO,
        "value": hex(fields["value"]),
        "gas": hex(fields["gas"]),
        "input": "0x" + fields["data"].hex(),
        "r": hex(signed.r),
        "s": hex(signed.s),
        "v": hex(signed.v),
    }
    if "type" in fields:
        shown["type"] = hex(fields["type"])
        shown["yParity"] = hex(signed.v)
        shown["accessList"] = []
    for name in ("chainId", "gasPrice", "maxFeePerGas", "maxPriorityFeePerGas", "maxFeePerBlobGas"):
        if name in fields and not (name == "chainId" and "type" not in fields):
            shown[name] = hex(fields[name])
    for name in ("accessList", "blobVersionedHashes"):
        if name in fields:
            shown[name] = fields[name]
    return shown


def signed_case(extra: dict[str, Any]) -> tuple[dict[str, Any], bytes, str]:
    """(the node's JSON, the signed bytes, the txid) of a transaction signed by eth-account."""
    fields = {"nonce": 7, "to": to_checksum_address(TO), "value": 10**18, "gas": 60_000}
    fields |= {"data": b"\x01\x02", **extra}
    signed = KEY.sign_transaction(fields)
    return as_json(fields, signed), bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


@pytest.mark.parametrize("case", list(CASES))
def test_every_transaction_type_is_rebuilt_byte_for_byte(case: str) -> None:
    shown, raw, txid = signed_case(CASES[case])
    assert encode_transaction(shown) == raw
    assert transaction_hash(raw) == txid
    assert sender(raw) == KEY.address.lower()


def test_a_set_code_transaction_is_rebuilt_with_its_authorizations() -> None:
    auth = KEY.sign_authorization({"chainId": 1, "address": TO, "nonce": 8})
    fields = {"type": 4, "chainId": 1, "nonce": 7, "to": to_checksum_address(TO), "value": 0}
    fields |= {"gas": 90_000, "data": b"", **FEE, "authorizationList": [auth]}
    signed = KEY.sign_transaction(fields)
    shown = as_json({**fields, "accessList": []}, signed)
    shown["authorizationList"] = [
        {
            "chainId": hex(auth.chain_id),
            "address": TO,
            "nonce": hex(auth.nonce),
            "yParity": hex(auth.y_parity),
            "r": hex(auth.r),
            "s": hex(auth.s),
        }
    ]
    assert encode_transaction(shown) == bytes(signed.raw_transaction)


def test_any_changed_field_changes_the_bytes_and_the_root() -> None:
    shown, raw, _ = signed_case(CASES["EIP-1559"])
    root = trie_root([raw])
    for field, value in [("value", hex(10**18 + 1)), ("to", "0x" + "12" * 20), ("input", "0x")]:
        changed = encode_transaction({**shown, field: value})
        assert changed != raw and trie_root([changed]) != root
    assert trie_root([]) == EMPTY_TRIE


def test_unknown_and_malformed_types() -> None:
    shown, _, _ = signed_case(CASES["EIP-1559"])
    with pytest.raises(UnknownEncoding):
        encode_transaction({**shown, "type": "0x7e"})
    with pytest.raises(BadNodeAnswer):
        encode_transaction({**shown, "yParity": "0x2", "v": "0x2"})
    with pytest.raises(BadNodeAnswer):
        encode_transaction({**shown, "v": "0x1", "yParity": "0x0"})
    receipt = {"type": "0x7e", "status": "0x1", "cumulativeGasUsed": "0x1", "logs": []}
    with pytest.raises(UnknownEncoding):
        encode_receipt({**receipt, "logsBloom": "0x" + "00" * 256})


TX = "0x" + "aa" * 32
A, B, C = ("0x" + f"{n:02x}" * 20 for n in (0xA1, 0xB2, 0xC3))


def frame(kind: str, to: str, value: int, *calls: dict[str, Any], failed: bool = False) -> Any:
    out: dict[str, Any] = {"type": kind, "from": A, "to": to, "value": hex(value)}
    if calls:
        out["calls"] = list(calls)
    if failed:
        out["error"] = "execution reverted"
    return out


def test_reverts_propagate_to_callees_and_ordinals_count_reverted_frames() -> None:
    top = frame(
        "CALL",
        B,
        5,
        frame("CALL", C, 1, frame("CALL", A, 2), failed=True),  # ordinal 0, and 1 inside it
        frame("STATICCALL", C, 0),  # moves nothing: not counted
        frame("CALL", C, 3),  # ordinal 2
    )
    [trace] = block_traces("call_tracer", [{"txHash": TX, "result": top}], [TX], "0x" + "bb" * 32)
    got = [(t.position, t.to_address, t.amount, t.reverted) for t in trace.transfers]
    assert got == [("trace:0", C, 1, True), ("trace:1", A, 2, True), ("trace:2", C, 3, False)]
    assert (trace.from_address, trace.to_address, trace.value, trace.failed) == (A, B, 5, False)


def test_parity_traces_read_the_same() -> None:
    block = "0x" + "bb" * 32

    def item(path: list[int], to: str, value: int, *, failed: bool = False) -> dict[str, Any]:
        action = {"callType": "call", "from": A, "to": to, "value": hex(value)}
        out: dict[str, Any] = {"type": "call", "action": action, "traceAddress": path}
        out["result"] = {}
        out |= {"transactionHash": TX, "transactionPosition": 0, "blockHash": block}
        return out | ({"error": "Reverted"} if failed else {})

    flat = [item([1], C, 3), item([], B, 5), item([0], C, 1, failed=True), item([0, 0], A, 2)]
    [parity] = block_traces("parity", flat, [TX], block)
    top = frame(
        "CALL", B, 5, frame("CALL", C, 1, frame("CALL", A, 2), failed=True), frame("CALL", C, 3)
    )
    [nested] = block_traces("call_tracer", [{"txHash": TX, "result": top}], [TX], block)
    assert parity == nested
    with pytest.raises(BadNodeAnswer, match="without its caller"):
        block_traces("parity", [item([], B, 5), item([0, 0], A, 2)], [TX], block)
    with pytest.raises(BadNodeAnswer, match="another block"):
        block_traces("parity", [{**item([], B, 5), "blockHash": "0x" + "cc" * 32}], [TX], block)
    with pytest.raises(BadNodeAnswer, match="one trace per transaction"):
        block_traces("call_tracer", [], [TX], block)
