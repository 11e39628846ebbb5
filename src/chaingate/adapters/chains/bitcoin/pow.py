"""Proof of work of an 80-byte block header, as Core's CheckProofOfWork: the header's PoW hash
(double-SHA256 on Bitcoin, scrypt N=1024 r=1 p=1 on Litecoin) read as a little-endian number
must not exceed the target its nBits encode, and that target must be no easier than the
network's proof-of-work limit."""

from __future__ import annotations

import hashlib

from chaingate.adapters.chains.bitcoin.address import sha256d

POW_HASHES = ("sha256d", "scrypt", "none")


def compact_target(bits: int) -> int | None:
    """The target nBits encodes (Core's SetCompact), None if negative, zero or overflowing."""
    size, word = bits >> 24, bits & 0x007FFFFF
    if word != 0 and bits & 0x00800000:
        return None  # negative
    if word != 0 and (size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)):
        return None  # overflow
    target = word >> 8 * (3 - size) if size <= 3 else word << 8 * (size - 3)
    return target or None


def pow_hash(header: bytes, algorithm: str) -> bytes:
    """The hash the target applies to (byte order as hashed, i.e. little-endian number)."""
    if algorithm == "scrypt":
        return hashlib.scrypt(header, salt=header, n=1024, r=1, p=1, dklen=32)
    return sha256d(header)


def pow_error(header: bytes, algorithm: str, pow_limit: int) -> str | None:
    """Why `header` lacks valid proof of work, or None when it has it (or checks are off)."""
    if algorithm == "none":
        return None
    bits = int.from_bytes(header[72:76], "little")
    target = compact_target(bits)
    if target is None:
        return f"nBits {bits:08x} is not a valid target"
    if target > pow_limit:
        return f"nBits {bits:08x} is easier than the network's proof-of-work limit"
    if int.from_bytes(pow_hash(header, algorithm), "little") > target:
        return f"header does not meet its target nBits {bits:08x}"
    return None
