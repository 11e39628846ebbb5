"""The PKCS#11 keystore: secp256k1 keys generated inside an HSM, never extractable, signing
inside it (tested on SoftHSM2 through python-pkcs11).

HSM keys are single keys (no BIP-32 inside the token): fit for hot, tokens_collector and gas
accounts. The token answers raw r||s signatures; low-S and the recovery id are ours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pkcs11
from coincurve import PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from chaingate.domain.custody import KeyRef, KeyStoreKind
from chaingate.signer.ecdsa import Signature, normalize
from chaingate.signer.keystores import KeyNotFound

SECP256K1_OID = "1.3.132.0.10"
_LABEL = re.compile(r"cg-v(?P<version>[0-9]+)-[A-Za-z0-9._-]+")


def key_label(version: int, name: str) -> str:
    """The label of a new key: the version is part of it, so the token itself tells which
    key generation a key belongs to."""
    return f"cg-v{version}-{name}"


class Pkcs11KeyStore:
    """One logged-in session on one token. Not thread-safe: the signer core serializes calls."""

    def __init__(self, module: Path, token_label: str, pin: str) -> None:
        self._lib = pkcs11.lib(str(module))
        token = self._lib.get_token(token_label=token_label)
        self._session = token.open(user_pin=pin, rw=True)
        self._private: dict[str, Any] = {}
        self._public: dict[str, bytes] = {}

    @property
    def kind(self) -> KeyStoreKind:
        return KeyStoreKind.PKCS11

    def versions(self) -> tuple[int, ...]:
        found = set()
        for key in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            match = _LABEL.fullmatch(getattr(key, "label", None) or "")
            if match:
                found.add(int(match["version"]))
        return tuple(sorted(found))

    def create_key(self, label: str) -> bytes:
        """Generate a secp256k1 key pair named `label` inside the token (private half
        sensitive and not extractable) and answer the compressed public key. Raises
        ValueError if the label is taken."""
        if self._find_private(label) is not None:
            raise ValueError(f"the token already holds a key labelled {label!r}")
        public, _private = self._session.generate_keypair(
            KeyType.EC,
            0,
            label=label,
            id=label.encode(),
            store=True,
            public_template={
                Attribute.EC_PARAMS: encode_named_curve_parameters(SECP256K1_OID),
                Attribute.VERIFY: True,
            },
            private_template={
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.PRIVATE: True,
                Attribute.SIGN: True,
            },
        )
        return _compressed(public[Attribute.EC_POINT])

    def public_key(self, ref: KeyRef) -> bytes:
        label = self._label(ref)
        cached = self._public.get(label)
        if cached is None:
            try:
                public = self._session.get_key(label=label, object_class=ObjectClass.PUBLIC_KEY)
            except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
                raise KeyNotFound(f"the token has no single public key {label!r}") from None
            cached = self._public[label] = _compressed(public[Attribute.EC_POINT])
        return cached

    def sign_digest(self, ref: KeyRef, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError("a digest has 32 bytes")
        label = self._label(ref)
        private = self._private.get(label) or self._find_private(label)
        if private is None:
            raise KeyNotFound(f"the token has no private key {label!r}")
        self._private[label] = private
        raw = private.sign(digest, mechanism=Mechanism.ECDSA)
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        return normalize(r, s, digest, self.public_key(ref))

    def is_extractable(self, ref: KeyRef) -> bool:
        """What the token says about the private key (tests check it is not)."""
        private = self._find_private(self._label(ref))
        if private is None:
            raise KeyNotFound(str(ref))
        return bool(private[Attribute.EXTRACTABLE]) or not bool(private[Attribute.SENSITIVE])

    def close(self) -> None:
        self._session.close()

    def _find_private(self, label: str) -> Any:
        try:
            key: Any = self._session.get_key(label=label, object_class=ObjectClass.PRIVATE_KEY)
        except pkcs11.NoSuchKey:
            return None
        return key

    @staticmethod
    def _label(ref: KeyRef) -> str:
        if ref.store is not KeyStoreKind.PKCS11 or ref.label is None:
            raise KeyNotFound(f"{ref} is not a PKCS#11 key")
        return ref.label


def _compressed(ec_point: bytes) -> bytes:
    # CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (SoftHSM, most HSMs);
    # a few tokens answer the bare point.
    point = ec_point
    if len(point) == 67 and point[0] == 0x04 and point[1] == 65:
        point = point[2:]
    return PublicKey(point).format(compressed=True)
