"""What makes two registered keys the same wallet: their key material, never their spelling.

An extended public key's serialization also carries a version, a depth, the parent's
fingerprint and a child number. None of them changes which addresses the key derives, so a
key re-serialized with another parent fingerprint or child number is the same wallet and must
be found "in use". The identity is the public key, the chain code and the script type the
addresses are built with.
"""

from __future__ import annotations

import hashlib

# Persisted (wallets.key_identity, and migration 0006 computes it for older rows): never change
# the formula, or existing wallets stop matching their own keys.
_DOMAIN_TAG = b"chaingate/wallet-key/v1\x00"


def key_identity(public_key: bytes, chain_code: bytes, script_type: str | None) -> str:
    """Hex SHA-256 over the 33-byte compressed public key, the 32-byte chain code and the script
    type ("" where the family has one address form). Raises ValueError for wrong lengths."""
    if len(public_key) != 33 or len(chain_code) != 32:
        raise ValueError("expected a 33-byte compressed public key and a 32-byte chain code")
    script = (script_type or "").encode("ascii")
    return hashlib.sha256(_DOMAIN_TAG + script + b"\x00" + public_key + chain_code).hexdigest()
