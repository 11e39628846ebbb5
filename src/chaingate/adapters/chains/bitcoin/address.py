"""Addresses of a Bitcoin-family network to output scripts, and raw transactions to their
txid and outputs — so a credited output can be checked against the transaction's own bytes,
Litecoin's MWEB serialization included."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from embit import base58, bech32

from chaingate.adapters.chains.bitcoin.params import ChainParams


class BadAddress(ValueError):
    pass


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def output_script(address: str, params: ChainParams) -> bytes:
    """The scriptPubKey `address` stands for on this network. Raises BadAddress."""
    if params.bech32_hrp and address.lower().startswith(params.bech32_hrp + "1"):
        version, program = bech32.decode(params.bech32_hrp, address)
        if version is None or program is None:
            raise BadAddress(f"invalid bech32 address {address!r}")
        opcode = 0 if version == 0 else 0x50 + version
        return bytes([opcode, len(program), *program])
    try:
        raw = bytes(base58.decode_check(address))
    except Exception as exc:  # embit raises several types for a bad checksum or alphabet
        raise BadAddress(f"invalid base58 address {address!r}") from exc
    if len(raw) == 21 and raw[0] == params.p2pkh_version:
        return b"\x76\xa9\x14" + raw[1:] + b"\x88\xac"
    if len(raw) == 21 and raw[0] == params.p2sh_version:
        return b"\xa9\x14" + raw[1:] + b"\x87"
    raise BadAddress(f"{address!r} is not an address of {params.chain} {params.network}")


@dataclass(frozen=True, slots=True)
class RawTransaction:
    txid: str  # double-SHA256 of the serialization without witness and MWEB data, as Core prints
    outputs: tuple[tuple[int, bytes], ...]  # (value in base units, scriptPubKey) by vout
    mweb: bool  # the serialization carried Litecoin's MWEB flag


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError("transaction ends early")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def varint(self) -> int:
        first = self.take(1)[0]
        if first < 0xFD:
            return first
        return int.from_bytes(self.take({0xFD: 2, 0xFE: 4, 0xFF: 8}[first]), "little")

    def varbytes(self) -> bytes:
        return self.take(self.varint())


_WITNESS_FLAG, _MWEB_FLAG = 0x01, 0x08
_LOCKTIME = 4
_MWEB_ABSENT, _MWEB_PRESENT = 0x00, 0x01  # Litecoin's OptionalPtr<mw::Transaction> tag


def parse_transaction(data: bytes) -> RawTransaction:
    """Txid and outputs of a serialized transaction. Raises ValueError for bytes that are no
    transaction, including any extension flag other than witness and MWEB.

    Litecoin's MWEB serialization (flag 0x08) puts the MWEB transaction body, behind a one-byte
    presence tag, between the witnesses and the lock time; the txid covers neither (Litecoin's
    ComputeHash serializes with SERIALIZE_NO_MWEB), so the body is passed over, not parsed: the
    lock time is the last 4 bytes. A HogEx transaction carries the tag alone (0x00). An
    MWEB-only transaction has no canonical outputs and another kind of txid: it never matches.
    """
    reader = _Reader(data)
    version = reader.take(4)
    flag = 0
    if len(data) > 6 and data[4] == 0 and data[5] != 0:
        reader.take(2)
        flag = data[5]
    if flag & ~(_WITNESS_FLAG | _MWEB_FLAG):
        raise ValueError(f"unknown transaction flag {flag:#04x}")
    body_start = reader.pos
    inputs = reader.varint()
    for _ in range(inputs):
        reader.take(36)
        reader.varbytes()
        reader.take(4)
    outputs = []
    for _ in range(reader.varint()):
        value = int.from_bytes(reader.take(8), "little")
        outputs.append((value, reader.varbytes()))
    body_end = reader.pos
    if flag & _WITNESS_FLAG:
        for _ in range(inputs):
            for _ in range(reader.varint()):
                reader.varbytes()
    if flag & _MWEB_FLAG:
        _skip_mweb_body(reader, len(data) - _LOCKTIME, has_outputs=bool(outputs))
    locktime = reader.take(_LOCKTIME)
    if reader.pos != len(data):
        raise ValueError("bytes after the transaction")
    stripped = version + data[body_start:body_end] + locktime
    return RawTransaction(sha256d(stripped)[::-1].hex(), tuple(outputs), bool(flag & _MWEB_FLAG))


def _skip_mweb_body(reader: _Reader, locktime_at: int, *, has_outputs: bool) -> None:
    """Move past the MWEB part (tag and body), which ends where the lock time begins."""
    tag = reader.take(1)[0]
    if tag == _MWEB_ABSENT:
        # A HogEx: no MWEB body, and (as Litecoin refuses otherwise) canonical outputs.
        if not has_outputs:
            raise ValueError("MWEB flag without a body or outputs")
        return
    if tag != _MWEB_PRESENT or reader.pos >= locktime_at:
        raise ValueError("malformed MWEB transaction body")
    reader.take(locktime_at - reader.pos)
