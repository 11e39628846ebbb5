"""EIP-1559 encoding: byte for byte what eth-account (an independent implementation) signs."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from eth_account import Account
from eth_utils.address import to_checksum_address

from chaingate.adapters.chains.evm.transactions import (
    MalformedTransaction,
    decode_signed,
    encode_signed,
    erc20_transfer_call,
    read_address_argument,
    read_erc20_transfer,
    signing_hash,
    transaction_hash,
)
from chaingate.domain.custody import EvmTransaction

KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
RECIPIENT = "0x" + "ab" * 20


@pytest.mark.parametrize(
    "tx",
    [
        EvmTransaction(1, 0, 1, 2, 21_000, RECIPIENT, 10**18),
        EvmTransaction(31337, 5, 2 * 10**9, 50 * 10**9, 21_000, RECIPIENT, 0),
        EvmTransaction(
            137, 300, 0, 10**12, 90_000, RECIPIENT, 0, erc20_transfer_call(RECIPIENT, 12345)
        ),
        EvmTransaction(10, 2**40, 7, 7, 10**7, RECIPIENT, 2**200, b"\x00" * 100),
    ],
)
def test_signed_bytes_equal_eth_accounts(tx: EvmTransaction) -> None:
    compact = PrivateKey(KEY).sign_recoverable(signing_hash(tx), hasher=None)
    r, s = int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big")
    v = compact[64]
    raw = encode_signed(tx, v, r, s)
    theirs = Account.sign_transaction(
        {
            "type": 2,
            "chainId": tx.chain_id,
            "nonce": tx.nonce,
            "maxPriorityFeePerGas": tx.max_priority_fee_per_gas,
            "maxFeePerGas": tx.max_fee_per_gas,
            "gas": tx.gas_limit,
            "to": to_checksum_address(tx.to),
            "value": tx.value,
            "data": tx.data,
            "accessList": [],
        },
        KEY,
    )
    assert raw == bytes(theirs.raw_transaction)
    assert transaction_hash(raw) == "0x" + bytes(theirs.hash).hex()
    decoded = decode_signed(raw)
    assert decoded.transaction == tx
    assert (decoded.y_parity, decoded.r, decoded.s) == (v, r, s)


def test_erc20_transfer_reads_back_and_refuses_lookalikes() -> None:
    data = erc20_transfer_call(RECIPIENT, 10**6)
    assert read_erc20_transfer(data) == (RECIPIENT, 10**6)
    assert read_erc20_transfer(data + b"\x00") is None  # trailing bytes
    assert read_erc20_transfer(b"\x23\xb8\x72\xdd" + data[4:]) is None  # transferFrom selector
    dirty = data[:4] + b"\x01" + data[5:]  # high bits in the address word
    assert read_erc20_transfer(dirty) is None
    assert read_address_argument(data, 0) == RECIPIENT
    assert read_address_argument(data, 2) is None


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x01\xc0", b"\x02\xc0", b"\x02\xc1\x80", bytes([2]) + b"\xf8\xff"],
)
def test_garbage_is_not_a_transaction(raw: bytes) -> None:
    with pytest.raises(MalformedTransaction):
        decode_signed(raw)
