"""Pure checks of node answers: amounts to satoshis, headers, Merkle roots, address scripts and
raw transactions (vectors from a real litecoind regtest block and the BIPs)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chaingate.adapters.chains.bitcoin.address import (
    BadAddress,
    output_script,
    parse_transaction,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.bitcoin.parse import (
    base_units,
    check_raw_outputs,
    header,
    merkle_root,
)
from chaingate.adapters.chains.bitcoin.rpc import BadNodeAnswer

BTC = BUILT_IN[("bitcoin", "mainnet")]
LTC_REGTEST = BUILT_IN[("litecoin", "regtest")]

# Coinbase of a litecoind regtest block at height 431 (SegWit serialization).
COINBASE_HEX = (
    "020000000001010000000000000000000000000000000000000000000000000000000000000000ffffffff0502af"
    "010101ffffffff02807c814a00000000160014e9c38b8453c0bf55584b244c636e2b3a6b9fe9e900000000000000"
    "00266a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9012000000000"
    "0000000000000000000000000000000000000000000000000000000000000000"
)
COINBASE_TXID = "22c9b3d456d4a16ce37788c73c6e2e91865ed81c4f61228038356cd6cf371f46"
COINBASE_TO = "rltc1qa8pchpznczl42kzty3xxxm3t8f4el60fuh5kkh"
# Bitcoin's genesis block header.
GENESIS_HEADER = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c"
    "3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_HASH = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
GENESIS_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"


def test_amounts_become_exact_satoshis() -> None:
    assert base_units(Decimal("12.50000000"), 8, "v") == 1_250_000_000
    assert base_units(Decimal("0.00000001"), 8, "v") == 1
    assert base_units(0, 8, "v") == 0
    assert base_units(Decimal("21000000"), 8, "v") == 2_100_000_000_000_000


@pytest.mark.parametrize(
    "value",
    [Decimal("0.000000001"), Decimal("-1"), Decimal("NaN"), Decimal("1e30"), 1.5, "1", True],
)
def test_bad_amounts_are_bad_node_answers(value: object) -> None:
    with pytest.raises(BadNodeAnswer):
        base_units(value, 8, "v")


def test_header_hash_parent_and_merkle_root() -> None:
    head = header(GENESIS_HEADER, GENESIS_HASH, "genesis")
    assert head.parent_hash == "00" * 32
    assert head.merkle_root == GENESIS_MERKLE
    assert head.timestamp == 1231006505
    with pytest.raises(BadNodeAnswer, match="does not hash"):
        header(GENESIS_HEADER, "11" * 32, "genesis")
    with pytest.raises(BadNodeAnswer):
        header(GENESIS_HEADER[:-2], GENESIS_HASH, "genesis")


def test_merkle_root_of_one_and_several() -> None:
    assert merkle_root([GENESIS_MERKLE]) == GENESIS_MERKLE
    odd, even = merkle_root(["aa" * 32] * 3), merkle_root(["aa" * 32] * 4)
    assert odd == even  # Core doubles the last id of an odd level


def test_output_scripts_of_each_address_kind() -> None:
    p2wpkh = output_script("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", BTC)
    assert p2wpkh.hex() == "0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2"
    p2tr = output_script("bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", BTC)
    assert p2tr[:2] == b"\x51\x20" and len(p2tr) == 34
    p2sh = output_script("37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf", BTC)
    assert p2sh[:2] == b"\xa9\x14" and p2sh[-1:] == b"\x87"
    p2pkh = output_script("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", BTC)
    assert p2pkh[:3] == b"\x76\xa9\x14" and p2pkh[-2:] == b"\x88\xac"
    with pytest.raises(BadAddress):
        output_script("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", LTC_REGTEST)


def test_raw_transaction_txid_and_outputs() -> None:
    parsed = parse_transaction(bytes.fromhex(COINBASE_HEX))
    assert parsed is not None
    assert parsed.txid == COINBASE_TXID
    assert parsed.outputs[0] == (1_250_000_000, output_script(COINBASE_TO, LTC_REGTEST))


def test_raw_outputs_confirm_or_refute_the_verbose_answer() -> None:
    claim = [(0, COINBASE_TO, 1_250_000_000)]
    assert check_raw_outputs(COINBASE_HEX, COINBASE_TXID, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="differs"):
        check_raw_outputs(COINBASE_HEX, COINBASE_TXID, [(0, COINBASE_TO, 1)], LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="hashes to"):
        check_raw_outputs(COINBASE_HEX, "ab" * 32, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="does not parse"):
        check_raw_outputs(COINBASE_HEX[:-8], COINBASE_TXID, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="no output"):
        check_raw_outputs(COINBASE_HEX, COINBASE_TXID, [(5, COINBASE_TO, 1)], LTC_REGTEST)


def test_mweb_extension_is_reported_not_guessed() -> None:
    mweb_flagged = COINBASE_HEX[:8] + "0008" + COINBASE_HEX[12:]
    assert parse_transaction(bytes.fromhex(mweb_flagged)) is None
