"""Pure checks of node answers: amounts to satoshis, headers, Merkle roots, address scripts and
raw transactions (vectors from a real litecoind regtest block and the BIPs)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chaingate.adapters.chains.bitcoin.address import (
    BadAddress,
    output_script,
    parse_transaction,
    sha256d,
)
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.chains.bitcoin.parse import (
    base_units,
    check_raw_outputs,
    header,
    merkle_root,
    transaction_outputs,
)
from chaingate.adapters.chains.bitcoin.pow import compact_target
from chaingate.adapters.chains.bitcoin.rpc import BadNodeAnswer

BTC = BUILT_IN[("bitcoin", "mainnet")]
LTC_REGTEST = BUILT_IN[("litecoin", "regtest")]
LTC = BUILT_IN[("litecoin", "mainnet")]
BTC_REGTEST = BUILT_IN[("bitcoin", "regtest")]

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
# Litecoin's genesis block header: its double-SHA256 is far above its target, its scrypt hash
# (0000050c...) is below it.
LTC_GENESIS_HEADER = (
    "010000000000000000000000000000000000000000000000000000000000000000000000d9ced4ed1130f7b7faad9b"
    "e25323ffafa33232a17c3edf6cfd97bee6bafbdd97b9aa8e4ef0ff0f1ecd513f7c"
)
LTC_GENESIS_HASH = "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2"


def _with_bits(header_hex: str, bits: int) -> tuple[str, str]:
    """The header with another nBits, and the hash it then has (the node's claim is honest)."""
    data = bytes.fromhex(header_hex)
    data = data[:72] + bits.to_bytes(4, "little") + data[76:]
    return data.hex(), sha256d(data)[::-1].hex()


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
    head = header(GENESIS_HEADER, GENESIS_HASH, "genesis", BTC)
    assert head.parent_hash == "00" * 32
    assert head.merkle_root == GENESIS_MERKLE
    assert head.timestamp == 1231006505
    with pytest.raises(BadNodeAnswer, match="does not hash"):
        header(GENESIS_HEADER, "11" * 32, "genesis", BTC)
    with pytest.raises(BadNodeAnswer):
        header(GENESIS_HEADER[:-2], GENESIS_HASH, "genesis", BTC)


def test_compact_targets_as_core_decodes_them() -> None:
    assert compact_target(0x1D00FFFF) == 0xFFFF << 208
    assert compact_target(0x207FFFFF) == 0x7FFFFF << 232
    assert compact_target(0x1E0377AE) == 0x0377AE << 216  # signet's limit, exactly
    assert compact_target(0x01003456) is None  # zero
    assert compact_target(0x04923456) is None  # negative
    assert compact_target(0xFF123456) is None  # overflow


def test_header_above_its_own_target_is_refused() -> None:
    # A correct hash, but 000000000019d6... is above the target of nBits 1b00ffff.
    raw, claimed = _with_bits(GENESIS_HEADER, 0x1B00FFFF)
    with pytest.raises(BadNodeAnswer, match="does not meet its target"):
        header(raw, claimed, "block", BTC)


def _mined(header_hex: str, bits: int) -> tuple[str, str]:
    """The header with nBits `bits` and the first nonce whose double-SHA256 meets them."""
    target = compact_target(bits)
    assert target is not None
    data = bytearray(bytes.fromhex(_with_bits(header_hex, bits)[0]))
    for nonce in range(1000):
        data[76:80] = nonce.to_bytes(4, "little")
        if int.from_bytes(sha256d(bytes(data)), "little") <= target:
            return data.hex(), sha256d(bytes(data))[::-1].hex()
    raise AssertionError("no nonce found")


def test_header_easier_than_the_pow_limit_is_refused() -> None:
    # Regtest's easy target (half of all hashes meet it) is no proof of work on mainnet.
    raw, claimed = _mined(GENESIS_HEADER, 0x207FFFFF)
    with pytest.raises(BadNodeAnswer, match="proof-of-work limit"):
        header(raw, claimed, "block", BTC)
    assert header(raw, claimed, "block", BTC_REGTEST).hash == claimed  # regtest's limit is 7fff..
    raw, claimed = _with_bits(GENESIS_HEADER, 0x04923456)
    with pytest.raises(BadNodeAnswer, match="not a valid target"):
        header(raw, claimed, "block", BTC_REGTEST)


# (time, nBits, nonce) of each built-in network's genesis block (Core's CreateGenesisBlock).
GENESIS_BLOCKS = {
    ("bitcoin", "mainnet"): (1231006505, 0x1D00FFFF, 2083236893),
    ("bitcoin", "testnet"): (1296688602, 0x1D00FFFF, 414098458),
    ("bitcoin", "signet"): (1598918400, 0x1E0377AE, 52613770),
    ("bitcoin", "regtest"): (1296688602, 0x207FFFFF, 2),
    ("litecoin", "mainnet"): (1317972665, 0x1E0FFFF0, 2084524493),
    ("litecoin", "testnet"): (1486949366, 0x1E0FFFF0, 293345),
    ("litecoin", "regtest"): (1296688602, 0x207FFFFF, 0),
}


@pytest.mark.parametrize("chain", sorted(GENESIS_BLOCKS))
def test_every_built_in_genesis_header_has_proof_of_work(chain: tuple[str, str]) -> None:
    # The limits and PoW hashes of the tables admit each network's real first block.
    time, bits, nonce = GENESIS_BLOCKS[chain]
    merkle = GENESIS_MERKLE if chain[0] == "bitcoin" else LTC_GENESIS_HEADER[72:136]
    prefix = bytes.fromhex(GENESIS_HEADER[:72]) + (
        bytes.fromhex(merkle)[::-1] if chain[0] == "bitcoin" else bytes.fromhex(merkle)
    )
    raw = prefix + b"".join(v.to_bytes(4, "little") for v in (time, bits, nonce))
    params = BUILT_IN[chain]
    assert header(raw.hex(), str(params.genesis_hash), "genesis", params).timestamp == time


def test_litecoin_proof_of_work_is_scrypt() -> None:
    assert header(LTC_GENESIS_HEADER, LTC_GENESIS_HASH, "genesis", LTC).hash == LTC_GENESIS_HASH
    # Under double-SHA256 the same header has no proof of work at all.
    with pytest.raises(BadNodeAnswer, match="does not meet"):
        header(LTC_GENESIS_HEADER, LTC_GENESIS_HASH, "genesis", BTC_REGTEST)
    raw, claimed = _with_bits(LTC_GENESIS_HEADER, 0x1D0FFFF0)  # scrypt hash above this target
    with pytest.raises(BadNodeAnswer, match="does not meet"):
        header(raw, claimed, "block", LTC)


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
    assert (parsed.txid, parsed.mweb) == (COINBASE_TXID, False)
    assert parsed.outputs[0] == (1_250_000_000, output_script(COINBASE_TO, LTC_REGTEST))


def test_raw_outputs_confirm_or_refute_the_verbose_answer() -> None:
    claim = [(0, COINBASE_TO, 1_250_000_000)]
    check_raw_outputs(COINBASE_HEX, COINBASE_TXID, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="differs"):
        check_raw_outputs(COINBASE_HEX, COINBASE_TXID, [(0, COINBASE_TO, 1)], LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="hashes to"):
        check_raw_outputs(COINBASE_HEX, "ab" * 32, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="does not parse"):
        check_raw_outputs(COINBASE_HEX[:-8], COINBASE_TXID, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="no output"):
        check_raw_outputs(COINBASE_HEX, COINBASE_TXID, [(5, COINBASE_TO, 1)], LTC_REGTEST)


# The witness flag swapped for MWEB's: the witness bytes (tag 0x01, then data) stand where an
# MWEB body would, and the txid, which covers neither, is unchanged.
MWEB_FLAGGED = COINBASE_HEX[:8] + "0008" + COINBASE_HEX[12:]


def test_an_mweb_serialization_proves_its_canonical_outputs() -> None:
    parsed = parse_transaction(bytes.fromhex(MWEB_FLAGGED))
    assert (parsed.txid, parsed.mweb) == (COINBASE_TXID, True)
    claim = [(0, COINBASE_TO, 1_250_000_000)]
    check_raw_outputs(MWEB_FLAGGED, COINBASE_TXID, claim, LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="differs"):
        check_raw_outputs(MWEB_FLAGGED, COINBASE_TXID, [(0, COINBASE_TO, 10**9 * 2)], LTC_REGTEST)
    with pytest.raises(BadNodeAnswer, match="chain without MWEB"):
        check_raw_outputs(MWEB_FLAGGED, COINBASE_TXID, claim, BTC_REGTEST)


@pytest.mark.parametrize(
    "blob",
    [
        "01000000000800",  # the reviewer's 7 bytes: no outputs to read at all
        "02000000000800000000000000",  # a HogEx tag with no outputs
        "02000000000800000200000000",  # an unknown MWEB tag
        "02000000000800000100000000",  # a tag announcing an absent body
        COINBASE_HEX[:8] + "0009" + COINBASE_HEX[12:],  # MWEB and witness: no witness there
    ],
)
def test_an_mweb_flag_cannot_switch_the_check_off(blob: str) -> None:
    # Before: a flag byte claiming MWEB made the check give up and the JSON was believed.
    claim = [(0, COINBASE_TO, 100_000_000)]
    with pytest.raises(BadNodeAnswer):
        check_raw_outputs(blob, COINBASE_TXID, claim, LTC_REGTEST)


@pytest.mark.parametrize("flag", ["08", "02", "80", "09"])
def test_unhashable_flags_are_refused_on_chains_without_mweb(flag: str) -> None:
    # The reviewer's probe: garbage with a marker/flag claiming 21M BTC on Bitcoin mainnet.
    claim = [(0, "bc1qw508d6qejxtdg4y5r3zzf4nfs8u2kphh5ud4v3", 2_100_000_000_000_000)]
    with pytest.raises(BadNodeAnswer):
        check_raw_outputs("02000000" + "00" + flag + "deadbeef", "ab" * 32, claim, BTC)


def test_unknown_flags_are_refused_even_on_mweb_chains() -> None:
    flagged = COINBASE_HEX[:8] + "0002" + COINBASE_HEX[12:]
    claim = [(0, COINBASE_TO, 1_250_000_000)]
    with pytest.raises(BadNodeAnswer, match="unknown transaction flag"):
        check_raw_outputs(flagged, COINBASE_TXID, claim, LTC_REGTEST)


def _verbose_tx(vout: list[dict[str, object]]) -> dict[str, object]:
    return {"txid": COINBASE_TXID, "vout": vout}


def _out(n: int, **extra: object) -> dict[str, object]:
    return {"n": n, "value": Decimal("0.5"), "scriptPubKey": {"address": COINBASE_TO}, **extra}


def test_ismweb_outputs_are_skipped_only_on_mweb_chains() -> None:
    # As litecoind lists a peg-in in the mempool: MWEB outputs have an output_id and no `n`.
    mweb_out = {"ismweb": True, "output_id": "17" * 32}
    tx = _verbose_tx([_out(0), mweb_out, _out(1), mweb_out])
    _, outputs = transaction_outputs(tx, 8, "tx", mweb=True)
    assert [o.vout for o in outputs] == [0, 1]
    with pytest.raises(BadNodeAnswer, match="chain without MWEB"):
        transaction_outputs(tx, 8, "tx", mweb=False)


def test_output_numbers_are_positions_without_a_fixed_bound() -> None:
    many = 100_002  # consensus-valid: a block has room for ~111k minimal outputs
    _, outputs = transaction_outputs(_verbose_tx([_out(n) for n in range(many)]), 8, "tx")
    assert len(outputs) == many and outputs[-1].vout == many - 1
    for vout in ([_out(0), _out(0)], [_out(1)], [_out(0), _out(2)]):
        with pytest.raises(BadNodeAnswer, match="numbered"):
            transaction_outputs(_verbose_tx(vout), 8, "tx")
