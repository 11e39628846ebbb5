"""The 2048-bit logs bloom of an EVM block header (Yellow Paper, section 4.3.1).

Each log adds its contract address and every topic: keccak-256 of the item, and from each of
the first three byte pairs the low 11 bits pick one of 2048 bits. A clear bit proves absence;
set bits only suggest presence. The scanner uses this to skip eth_getLogs for blocks that cannot
hold a Transfer from a whitelisted token.
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_hash.auto import keccak

BLOOM_BYTES = 256


def bloom_bits(item: bytes) -> tuple[int, int, int]:
    """The three bit positions (0..2047) that `item` sets."""
    digest = keccak(item)
    return (
        int.from_bytes(digest[0:2], "big") & 2047,
        int.from_bytes(digest[2:4], "big") & 2047,
        int.from_bytes(digest[4:6], "big") & 2047,
    )


def bloom_contains(bloom: bytes, item: bytes) -> bool:
    """False when `item` was certainly not added to `bloom`; True when it may have been."""
    if len(bloom) != BLOOM_BYTES:
        raise ValueError(f"a logs bloom has {BLOOM_BYTES} bytes, got {len(bloom)}")
    # Bit 0 is the least significant bit of the last byte (the bloom is a big-endian integer).
    return all(bloom[BLOOM_BYTES - 1 - bit // 8] & (1 << (bit % 8)) for bit in bloom_bits(item))


def bloom_add(bloom: bytearray, item: bytes) -> None:
    """Set the bits of `item` in `bloom` (used to build blooms in tests and tools)."""
    for bit in bloom_bits(item):
        bloom[BLOOM_BYTES - 1 - bit // 8] |= 1 << (bit % 8)


def may_hold_log(bloom: bytes, contracts: Iterable[bytes], topic: bytes) -> bool:
    """Whether a block with this bloom may hold a log with `topic` from one of `contracts`."""
    return bloom_contains(bloom, topic) and any(bloom_contains(bloom, c) for c in contracts)
