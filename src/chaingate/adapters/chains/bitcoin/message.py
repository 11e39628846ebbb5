"""Bitcoin's signed messages (`signmessage`, Electrum's and hardware wallets' "sign message").

The signature is 65 bytes, base64: a header byte, then r and s. The header says which of the
candidate public keys to recover (27-30 uncompressed, 31-34 compressed; BIP-137 adds 35-42 to
name a SegWit address type). We recover the public key and compare it with the expected one,
so the header's address type does not matter: what counts is who holds the private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from coincurve import PublicKey


def _compact_size(length: int) -> bytes:
    if length < 0xFD:
        return bytes([length])
    if length <= 0xFFFF:
        return b"\xfd" + length.to_bytes(2, "little")
    return b"\xfe" + length.to_bytes(4, "little")


def message_hash(magic: str, message: str) -> bytes:
    """Double SHA-256 of the magic and the message, each prefixed with its length."""
    magic_bytes, text = magic.encode(), message.encode()
    payload = _compact_size(len(magic_bytes)) + magic_bytes + _compact_size(len(text)) + text
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()


def signer_public_key(magic: str, message: str, signature: str) -> bytes | None:
    """The compressed public key that signed `message`, or None for a malformed signature."""
    try:
        raw = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 65 or not 27 <= raw[0] <= 42:
        return None
    recovery_id = (raw[0] - 27) & 3
    try:
        key = PublicKey.from_signature_and_message(
            raw[1:] + bytes([recovery_id]), message_hash(magic, message), hasher=None
        )
    except Exception:  # coincurve raises ValueError / Exception for an unrecoverable point
        return None
    compressed: bytes = key.format(compressed=True)
    return compressed
