"""secp256k1 ECDSA details both keystores share: low-S, recovery ids, DER."""

from __future__ import annotations

from dataclasses import dataclass

from coincurve import PublicKey

# Order of the secp256k1 group.
CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True, slots=True)
class Signature:
    """A low-S signature of a 32-byte digest, with the id that recovers the signer's key."""

    r: int
    s: int
    recovery_id: int

    def der(self) -> bytes:
        """DER encoding, as Bitcoin scripts carry it (without the sighash byte)."""
        return _der_sequence(_der_int(self.r) + _der_int(self.s))

    def compact(self) -> bytes:
        """r || s || recovery id (65 bytes), coincurve's recoverable form."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.recovery_id])


class BadSignature(ValueError):
    """A keystore answered a signature that does not verify for its own key."""


def normalize(r: int, s: int, digest: bytes, public_key: bytes) -> Signature:
    """Low-S form of a raw (r, s) signature plus its recovery id, found by recovering the key.

    An HSM answers raw r||s with either S; Bitcoin (BIP-62/146) and Ethereum (EIP-2) only
    accept the lower one. Raises BadSignature when neither id recovers `public_key`.
    """
    if not (0 < r < CURVE_ORDER and 0 < s < CURVE_ORDER):
        raise BadSignature("r or s out of range")
    if s > CURVE_ORDER // 2:
        s = CURVE_ORDER - s
    expected = PublicKey(public_key).format(compressed=True)
    for recovery_id in (0, 1):
        candidate = Signature(r, s, recovery_id)
        try:
            recovered = PublicKey.from_signature_and_message(
                candidate.compact(), digest, hasher=None
            )
        except ValueError:
            continue
        if recovered.format(compressed=True) == expected:
            return candidate
    raise BadSignature("the signature does not recover the key that made it")


def _der_int(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 8) // 8, "big")  # a leading 0 keeps it positive
    return bytes([0x02, len(body)]) + body


def _der_sequence(body: bytes) -> bytes:
    return bytes([0x30, len(body)]) + body
