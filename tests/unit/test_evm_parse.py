"""Node answers are untrusted: malformed ones are refused, and the bloom check is exact."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eth_hash.auto import keccak

from chaingate.adapters.chains.evm import parse
from chaingate.adapters.chains.evm.bloom import (
    BLOOM_BYTES,
    bloom_add,
    bloom_bits,
    bloom_contains,
    may_hold_log,
)
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.scanner import TRANSFER_TOPIC
from chaingate.domain.chain import NodeUnavailable

BLOCK_HASH = "0x" + "11" * 32
PARENT_HASH = "0x" + "22" * 32
TX_HASH = "0x" + "33" * 32
ALICE = "0x" + "aa" * 20
BOB = "0x" + "bb" * 20
EMPTY_BLOOM = "0x" + "00" * BLOOM_BYTES


def a_transaction(**changes: Any) -> dict[str, Any]:
    tx = {
        "hash": TX_HASH,
        "blockHash": BLOCK_HASH,
        "blockNumber": "0x10",
        "from": ALICE,
        "to": BOB,
        "value": "0xde0b6b3a7640000",
        "transactionIndex": "0x0",
    }
    tx.update(changes)
    return tx


def a_block(**changes: Any) -> dict[str, Any]:
    block = {
        "number": "0x10",
        "hash": BLOCK_HASH,
        "parentHash": PARENT_HASH,
        "timestamp": "0x6553f100",
        "logsBloom": EMPTY_BLOOM,
        "transactions": [a_transaction()],
    }
    block.update(changes)
    return block


def a_log(**changes: Any) -> dict[str, Any]:
    log = {
        "address": "0x" + "cc" * 20,
        "topics": [TRANSFER_TOPIC, "0x" + "00" * 12 + "aa" * 20, "0x" + "00" * 12 + "bb" * 20],
        "data": "0x" + "00" * 31 + "05",
        "blockHash": BLOCK_HASH,
        "blockNumber": "0x10",
        "transactionHash": TX_HASH,
        "logIndex": "0x3",
        "removed": False,
    }
    log.update(changes)
    return log


# ----- scalars ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [("0x0", 0), ("0x1", 1), ("0xff", 255), ("0xAb", 171)])
def test_quantities_parse(text: str, value: int) -> None:
    assert parse.quantity(text, "q") == value


@pytest.mark.parametrize(
    "bad",
    [
        "0x",
        "0x00",
        "0x01",
        "1",
        "ff",
        "0xg1",
        " 0x1",
        "0x1 ",
        "-0x1",
        1,
        1.0,
        None,
        True,
        "0x" + "f" * 65,
        ["0x1"],
    ],
)
def test_malformed_quantities_are_refused(bad: object) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.quantity(bad, "q")


def test_bad_node_answer_is_a_node_unavailable() -> None:
    # The tracker's retry path catches NodeUnavailable: garbage must take that path.
    assert issubclass(BadNodeAnswer, NodeUnavailable)


def test_hashes_and_addresses_come_out_lower_case() -> None:
    assert parse.hash32("0x" + "AB" * 32, "h") == "0x" + "ab" * 32
    checksummed = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert parse.address(checksummed, "a") == checksummed.lower()


@pytest.mark.parametrize(
    "bad", ["0x" + "ab" * 31, "0x" + "ab" * 33, "ab" * 32, "0x" + "zz" * 32, None, 5]
)
def test_malformed_hashes_are_refused(bad: object) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.hash32(bad, "h")


@pytest.mark.parametrize("bad", ["0x" + "ab" * 19, "0x" + "ab" * 21, "ab" * 20, "", None])
def test_malformed_addresses_are_refused(bad: object) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.address(bad, "a")


@pytest.mark.parametrize("bad", ["0x0", "0xabc", "abcd", None, 0])
def test_odd_or_unprefixed_data_is_refused(bad: object) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.data(bad, "d")


# ----- blocks ----------------------------------------------------------------------------


def test_a_full_block_parses_into_verified_values() -> None:
    block = parse.block(a_block(), full_transactions=True)
    assert block is not None
    assert block.ref.number == 16
    assert block.ref.hash == BLOCK_HASH
    assert block.ref.parent_hash == PARENT_HASH
    assert block.ref.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    (tx,) = block.transactions
    assert (tx.hash, tx.from_address, tx.to_address, tx.value) == (TX_HASH, ALICE, BOB, 10**18)


def test_null_block_means_the_node_does_not_have_it() -> None:
    assert parse.block(None, full_transactions=True) is None


def test_contract_creation_has_no_recipient() -> None:
    block = parse.block(a_block(transactions=[a_transaction(to=None)]), full_transactions=True)
    assert block is not None
    assert block.transactions[0].to_address is None


@pytest.mark.parametrize(
    "changes",
    [
        {"number": None},
        {"number": "16"},
        {"hash": "0x1234"},
        {"parentHash": None},
        {"timestamp": "0x" + "f" * 20},
        {"logsBloom": "0x" + "00" * 255},
        {"logsBloom": None},
        {"transactions": None},
        {"transactions": [a_transaction(value="1000")]},
        {"transactions": [a_transaction(blockHash=PARENT_HASH)]},
        {"transactions": [a_transaction(blockNumber="0x11")]},
        {"transactions": [a_transaction(to="0x1234")]},
        {"transactions": [a_transaction(), a_transaction()]},
        {"transactions": ["0x" + "33" * 32]},
    ],
)
def test_malformed_blocks_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.block(a_block(**changes), full_transactions=True)


@pytest.mark.parametrize("bad", [[], "block", 16])
def test_non_object_blocks_are_refused(bad: object) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.block(bad, full_transactions=False)


# ----- logs and receipts -----------------------------------------------------------------


def test_a_log_parses() -> None:
    log = parse.log(a_log())
    assert log.topics[0] == TRANSFER_TOPIC
    assert log.data == (5).to_bytes(32, "big")
    assert (log.log_index, log.block_number, log.removed) == (3, 16, False)


@pytest.mark.parametrize(
    "changes",
    [
        {"topics": None},
        {"topics": [TRANSFER_TOPIC] * 5},
        {"topics": ["0x1234"]},
        {"data": "0x0"},
        {"removed": "false"},
        {"logIndex": None},
        {"blockHash": None},
        {"address": "0x" + "cc" * 19},
    ],
)
def test_malformed_logs_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.logs([a_log(**changes)])


def test_a_logs_answer_must_be_a_list() -> None:
    with pytest.raises(BadNodeAnswer):
        parse.logs({"logs": []})


def a_receipt(**changes: Any) -> dict[str, Any]:
    receipt = {
        "transactionHash": TX_HASH,
        "blockHash": BLOCK_HASH,
        "blockNumber": "0x10",
        "status": "0x1",
        "contractAddress": None,
    }
    receipt.update(changes)
    return receipt


def test_a_receipt_parses() -> None:
    receipt = parse.receipt(a_receipt(status="0x0"), "r")
    assert (receipt.status, receipt.block_hash, receipt.contract_address) == (0, BLOCK_HASH, None)


@pytest.mark.parametrize(
    "changes", [{"status": "0x2"}, {"status": None}, {"status": 1}, {"blockHash": "0x"}]
)
def test_malformed_receipts_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(BadNodeAnswer):
        parse.receipt(a_receipt(**changes), "r")


def test_a_missing_receipt_is_refused() -> None:
    with pytest.raises(BadNodeAnswer):
        parse.receipt(None, "r")


# ----- bloom -----------------------------------------------------------------------------

# Yellow Paper 4.3.1: keccak of the item; from byte pairs (0,1), (2,3), (4,5) the low 11 bits
# each select one of 2048 bits, bit 0 being the lowest bit of the last byte. Real blocks'
# blooms are checked against anvil in tests/integration/test_evm_client.py.
USDT = bytes.fromhex("dac17f958d2ee523a2206206994597c13d831ec7")
TOPIC = bytes.fromhex(TRANSFER_TOPIC[2:])


def test_bloom_bits_follow_the_yellow_paper() -> None:
    digest = keccak(USDT)
    expected = tuple(((digest[i] << 8) | digest[i + 1]) % 2048 for i in (0, 2, 4))
    assert bloom_bits(USDT) == expected


def test_bloom_bit_placement_is_big_endian() -> None:
    bloom = bytearray(BLOOM_BYTES)
    bloom_add(bloom, TOPIC)
    as_integer = int.from_bytes(bloom, "big")
    assert as_integer == sum(1 << bit for bit in set(bloom_bits(TOPIC)))


def test_bloom_contains_what_was_added_and_not_other_items() -> None:
    bloom = bytearray(BLOOM_BYTES)
    bloom_add(bloom, USDT)
    bloom_add(bloom, TOPIC)
    assert bloom_contains(bytes(bloom), USDT)
    assert bloom_contains(bytes(bloom), TOPIC)
    assert not bloom_contains(bytes(bloom), bytes(20))
    assert may_hold_log(bytes(bloom), [bytes(20), USDT], TOPIC)
    assert not may_hold_log(bytes(bloom), [bytes(20)], TOPIC)
    only_contract = bytearray(BLOOM_BYTES)
    bloom_add(only_contract, USDT)
    assert not may_hold_log(bytes(only_contract), [USDT], TOPIC)


def test_an_empty_bloom_holds_nothing_and_a_full_one_may_hold_anything() -> None:
    assert not bloom_contains(bytes(BLOOM_BYTES), USDT)
    assert bloom_contains(b"\xff" * BLOOM_BYTES, USDT)


def test_a_bloom_of_the_wrong_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="256"):
        bloom_contains(bytes(255), USDT)
