"""Webhook signing secrets: generated here, stored encrypted, decrypted only to sign.

They cannot be hashed like API keys, because the dispatcher needs the plaintext to compute each
signature. So they are sealed with AES-256-GCM under a key derived from the operator's
`secret_key`. Stored form: `v1:` + urlsafe base64 of (12-byte nonce | ciphertext | 16-byte tag).
The version prefix lets a later key or algorithm coexist with rows written under this one.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chaingate.domain.errors import SecretDecryptionError

_VERSION = "v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
# Binds the derived key to this one use, so the same master key can derive others safely.
_HKDF_INFO = b"chaingate/webhook-signing-secrets/v1"
_HKDF_SALT = b"chaingate"
# Authenticated with every ciphertext: a value sealed for another purpose will not open here.
_AAD = b"chaingate:webhook-secret:v1"


class SecretBox:
    """Seals and opens short secrets with a key derived from the operator's master key."""

    def __init__(self, master_key: str) -> None:
        if not master_key:
            raise ValueError("the master key must not be empty")
        key = HKDF(algorithm=SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
            master_key.encode()
        )
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, plaintext: str) -> str:
        """The sealed form of `plaintext`; a new random nonce each call, so equal inputs differ."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _AAD)
        return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        """The plaintext sealed in `token`. Raises SecretDecryptionError if it does not open."""
        version, sep, encoded = token.partition(":")
        if not sep or version != _VERSION:
            raise SecretDecryptionError(f"unknown secret format {version[:8]!r}")
        try:
            raw = base64.urlsafe_b64decode(encoded.encode())
        except (binascii.Error, ValueError) as exc:
            raise SecretDecryptionError("stored secret is not valid base64") from exc
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretDecryptionError("stored secret is too short")
        try:
            plaintext = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD)
        except InvalidTag as exc:
            # Same message for a wrong key and for tampering: neither is worth distinguishing.
            raise SecretDecryptionError(
                "stored secret does not decrypt (wrong secret_key, or the value was altered)"
            ) from exc
        return plaintext.decode()
