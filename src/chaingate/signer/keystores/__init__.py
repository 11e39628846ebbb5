"""Keystores: where the signer's private keys live, behind one interface.

`file`: an encrypted BIP-32 seed per key version (HD keys, by path). `pkcs11`: an HSM holding
single secp256k1 keys that never leave it (by label).
"""

from __future__ import annotations

from typing import Protocol

from chaingate.domain.custody import KeyRef, KeyStoreKind
from chaingate.signer.ecdsa import Signature


class KeyNotFound(LookupError):
    """The keystore has no key for the ref (unknown version, path or label)."""


class KeyStore(Protocol):
    @property
    def kind(self) -> KeyStoreKind: ...

    def versions(self) -> tuple[int, ...]:
        """The key versions this store holds, oldest first."""
        ...

    def public_key(self, ref: KeyRef) -> bytes:
        """The 33-byte compressed public key of `ref`. Raises KeyNotFound."""
        ...

    def sign_digest(self, ref: KeyRef, digest: bytes) -> Signature:
        """A low-S signature of the 32-byte `digest` with `ref`'s key, with its recovery id.
        Raises KeyNotFound."""
        ...
