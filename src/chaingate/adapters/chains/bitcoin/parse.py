"""Checked translation of Core JSON-RPC answers. Everything a node says is untrusted input:
a wrong type, a malformed hash, a fractional satoshi or a header that does not hash to the
block's hash raises BadNodeAnswer (a NodeUnavailable), never anything else.

Headers must carry valid proof of work for the chain (pow.py). Accepts both JSON shapes of
`scriptPubKey`: `address` (Core 22+) and `addresses` (older Core, Litecoin Core 0.21). Litecoin
MWEB outputs (`ismweb`, peg-in and HogEx scripts) carry no address and are skipped, on chains
whose parameters say they have MWEB; anywhere else an `ismweb` output is a bad answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from chaingate.adapters.chains.bitcoin.address import (
    BadAddress,
    output_script,
    parse_transaction,
    sha256d,
)
from chaingate.adapters.chains.bitcoin.params import ChainParams
from chaingate.adapters.chains.bitcoin.pow import pow_error
from chaingate.adapters.chains.bitcoin.rpc import BadNodeAnswer
from chaingate.domain.chain import BlockRef

_HASH = re.compile(r"[0-9a-f]{64}")
_HEADER = re.compile(r"[0-9a-f]{160}")
_ADDRESS = re.compile(r"[0-9A-Za-z]{14,120}")
MAX_HEIGHT = 2**31 - 1
_MAX_COINS = Decimal(10) ** 12  # far above any chain's supply (Dogecoin has no cap)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def hash_hex(value: object, what: str) -> str:
    """A 32-byte hash as Core prints it: 64 lower-case hex digits."""
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise BadNodeAnswer(f"{what}: expected a 64-hex-digit hash, got {_show(value)}")
    return value


def integer(value: object, what: str, *, low: int = 0, high: int = 2**63 - 1) -> int:
    if type(value) is not int or not low <= value <= high:
        raise BadNodeAnswer(f"{what}: expected an integer in {low}..{high}, got {_show(value)}")
    return value


def base_units(value: object, decimals: int, what: str) -> int:
    """An amount in coins (JSON number parsed as Decimal) as exact integer base units."""
    if type(value) is int:
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise BadNodeAnswer(f"{what}: expected a non-negative amount, got {_show(value)}")
    if value > _MAX_COINS:
        raise BadNodeAnswer(f"{what}: amount {value} is larger than any supply")
    try:
        units = value.scaleb(decimals)
        exact = units.to_integral_exact()
    except InvalidOperation as exc:
        raise BadNodeAnswer(f"{what}: amount {value} is not representable") from exc
    if units != exact:
        raise BadNodeAnswer(f"{what}: amount {value} has more than {decimals} decimals")
    return int(exact)


@dataclass(frozen=True, slots=True)
class Header:
    """The 80-byte header, checked to hash to the hash the node named."""

    hash: str
    parent_hash: str
    merkle_root: str
    timestamp: int


def header(raw: object, expected_hash: str, what: str, params: ChainParams) -> Header:
    """Parse `getblockheader <hash> false`; raises BadNodeAnswer unless it hashes to
    `expected_hash` and carries valid proof of work for `params`."""
    if not isinstance(raw, str) or _HEADER.fullmatch(raw) is None:
        raise BadNodeAnswer(f"{what}: expected an 80-byte hex header, got {_show(raw)}")
    data = bytes.fromhex(raw)
    if sha256d(data)[::-1].hex() != expected_hash:
        raise BadNodeAnswer(f"{what}: header does not hash to block {expected_hash}")
    problem = pow_error(data, params.pow_hash, params.pow_limit)
    if problem is not None:
        raise BadNodeAnswer(f"{what}: no valid proof of work: {problem}")
    return Header(
        hash=expected_hash,
        parent_hash=data[4:36][::-1].hex(),
        merkle_root=data[36:68][::-1].hex(),
        timestamp=int.from_bytes(data[68:72], "little"),
    )


def merkle_root(txids: list[str]) -> str:
    """The Merkle root of a block's transaction ids (Core's algorithm, last one doubled)."""
    level = [bytes.fromhex(t)[::-1] for t in txids]
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0][::-1].hex()


@dataclass(frozen=True, slots=True)
class Output:
    txid: str
    vout: int
    address: str
    amount: int  # base units
    coinbase: bool


@dataclass(frozen=True, slots=True)
class NodeBlock:
    ref: BlockRef
    outputs: tuple[Output, ...]


def _dict(value: object, what: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise BadNodeAnswer(f"{what}: expected an object, got {_show(value)}")
    return value


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise BadNodeAnswer(f"{what}: expected a list, got {_show(value)}")
    return value


def output_address(script: dict[str, object], what: str) -> str | None:
    """The single address an output pays, or None (OP_RETURN, bare multisig, MWEB, unknown)."""
    address = script.get("address")
    if address is None:
        addresses = script.get("addresses")
        if addresses is None:
            return None
        listed = _list(addresses, f"{what}.addresses")
        if len(listed) != 1:
            return None  # bare multisig: not a script we derive
        address = listed[0]
    if not isinstance(address, str) or _ADDRESS.fullmatch(address) is None:
        raise BadNodeAnswer(f"{what}: malformed address {_show(address)}")
    return address


def transaction_outputs(
    raw_tx: object, decimals: int, what: str, *, coinbase: bool = False, mweb: bool = False
) -> tuple[str, list[Output]]:
    """(txid, outputs with an address) of one verbose transaction; `mweb`: the chain has MWEB
    outputs, which are skipped (elsewhere they are a bad answer)."""
    tx = _dict(raw_tx, what)
    txid = hash_hex(tx.get("txid"), f"{what}.txid")
    outputs: list[Output] = []
    position = 0  # of the canonical outputs; MWEB outputs carry an output_id, no `n`
    for index, raw_out in enumerate(_list(tx.get("vout"), f"{what}.vout")):
        out = _dict(raw_out, f"{what}.vout[{index}]")
        if out.get("ismweb") is True:
            if not mweb:
                raise BadNodeAnswer(f"{what}.vout[{index}]: an MWEB output on a chain without MWEB")
            continue
        # Core lists outputs in order: `n` is the position, however many outputs there are.
        n = integer(out.get("n"), f"{what}.vout[{index}].n")
        if n != position:
            raise BadNodeAnswer(f"{what}: output at position {position} is numbered {n}")
        position += 1
        script = out.get("scriptPubKey")
        if script is None:
            continue
        address = output_address(_dict(script, f"{what}.vout[{n}]"), f"{what}.vout[{n}]")
        amount = base_units(out.get("value"), decimals, f"{what}.vout[{n}].value")
        if address is not None and amount > 0:
            outputs.append(Output(txid, n, address, amount, coinbase))
    return txid, outputs


def block(
    raw: object, head: Header, height: int, decimals: int, *, mweb: bool = False
) -> NodeBlock:
    """A `getblock <hash> 2` answer, checked against its verified header: same hash, parent,
    height and a Merkle root that covers exactly the listed transactions."""
    what = f"block {height}"
    data = _dict(raw, what)
    if hash_hex(data.get("hash"), f"{what}.hash") != head.hash:
        raise BadNodeAnswer(f"{what}: body is of another block than its header")
    if integer(data.get("height"), f"{what}.height", high=MAX_HEIGHT) != height:
        raise BadNodeAnswer(f"{what}: node answered height {data.get('height')}")
    parent = data.get("previousblockhash")
    if height > 0 and hash_hex(parent, f"{what}.previousblockhash") != head.parent_hash:
        raise BadNodeAnswer(f"{what}: previousblockhash disagrees with the header")
    txs = _list(data.get("tx"), f"{what}.tx")
    if not txs:
        raise BadNodeAnswer(f"{what}: a block without a coinbase transaction")
    outputs: list[Output] = []
    txids: list[str] = []
    for index, raw_tx in enumerate(txs):
        txid, tx_outputs = transaction_outputs(
            raw_tx, decimals, f"{what}.tx[{index}]", coinbase=index == 0, mweb=mweb
        )
        txids.append(txid)
        outputs.extend(tx_outputs)
    if merkle_root(txids) != head.merkle_root:
        raise BadNodeAnswer(f"{what}: transactions do not match the header's Merkle root")
    ref = BlockRef(
        number=height,
        hash=head.hash,
        parent_hash=head.parent_hash,
        timestamp=datetime.fromtimestamp(head.timestamp, UTC),
    )
    return NodeBlock(ref, tuple(outputs))


_RAW_TX = re.compile(r"(?:[0-9a-f]{2})+")


def check_raw_outputs(
    raw_hex: object, txid: str, outputs: list[tuple[int, str, int]], params: ChainParams
) -> None:
    """Check (vout, address, amount) claims against the transaction's own bytes: the bytes must
    parse, hash to `txid` and hold each output with that amount and the address's script.
    Litecoin MWEB serializations count on chains whose parameters say they have MWEB (the
    txid covers their canonical part, which is parsed and hashed like any other).

    Raises BadNodeAnswer otherwise: a node's bytes that do not prove the outputs it claims are
    a bad answer, never a reason to believe the verbose JSON instead.
    """
    if not isinstance(raw_hex, str) or _RAW_TX.fullmatch(raw_hex) is None:
        raise BadNodeAnswer(f"tx {txid}: expected raw transaction hex")
    try:
        parsed = parse_transaction(bytes.fromhex(raw_hex))
    except (ValueError, KeyError) as exc:
        raise BadNodeAnswer(f"tx {txid}: raw transaction does not parse: {exc}") from exc
    if parsed.mweb and not params.mweb:
        raise BadNodeAnswer(f"tx {txid}: MWEB-flagged transaction on a chain without MWEB")
    if parsed.txid != txid:
        raise BadNodeAnswer(f"tx {txid}: raw transaction hashes to {parsed.txid}")
    for vout, address, amount in outputs:
        if vout >= len(parsed.outputs):
            raise BadNodeAnswer(f"tx {txid}: no output {vout} in the raw transaction")
        value, script = parsed.outputs[vout]
        try:
            expected = output_script(address, params)
        except BadAddress as exc:
            raise BadNodeAnswer(f"tx {txid}: {exc}") from exc
        if value != amount or script != expected:
            raise BadNodeAnswer(f"tx {txid}: output {vout} differs from the raw transaction")
