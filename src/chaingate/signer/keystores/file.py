"""The file keystore: one 64-byte BIP-32 seed per key version, each encrypted with a key
stretched from the operator's passphrase by argon2id (memory-hard; its parameters are stored in
the file) and sealed with AES-256-GCM.

Backup is a copy of the file plus the passphrase. Rotation appends a new version with a new
seed under the same passphrase: new accounts use it, old key refs keep signing with theirs.
"""

from __future__ import annotations

import json
import os
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from coincurve import PrivateKey
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from embit import bip32

from chaingate.domain.custody import KeyRef, KeyStoreKind
from chaingate.signer.ecdsa import Signature
from chaingate.signer.keystores import KeyNotFound

FORMAT = "chaingate-keystore"
FORMAT_VERSION = 1
SEED_BYTES = 64
_KEY_CACHE = 4096


class WrongPassphrase(ValueError):
    """The passphrase does not open the keystore (or the file was altered)."""


class KeystoreFileError(ValueError):
    """The file is not a keystore this signer can read."""


@dataclass(frozen=True, slots=True)
class KdfParams:
    """argon2id cost. The default (3 passes over 64 MiB) takes a noticeable fraction of a
    second here, once per unlock; `fast()` is for throwaway keystores in tests only."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 1

    @classmethod
    def fast(cls) -> KdfParams:
        return cls(time_cost=1, memory_cost_kib=8 * 1024, parallelism=1)

    def stretch(self, passphrase: bytes, salt: bytes) -> bytes:
        return hash_secret_raw(
            passphrase,
            salt,
            time_cost=self.time_cost,
            memory_cost=self.memory_cost_kib,
            parallelism=self.parallelism,
            hash_len=32,
            type=Type.ID,
        )


def _header(version: int, kdf: Mapping[str, Any]) -> bytes:
    # Authenticated with the ciphertext: changing a version number or weakening the stored KDF
    # parameters breaks the tag instead of silently opening a different key.
    text = json.dumps(
        {"format": FORMAT, "key_version": version, "kdf": dict(kdf), "cipher": "aes-256-gcm"},
        sort_keys=True,
        separators=(",", ":"),
    )
    return text.encode()


def _seal(seed: bytes, passphrase: bytes, version: int, kdf: KdfParams) -> dict[str, Any]:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    kdf_doc = {"name": "argon2id", **asdict(kdf), "salt": salt.hex()}
    key = kdf.stretch(passphrase, salt)
    sealed = AESGCM(key).encrypt(nonce, seed, _header(version, kdf_doc))
    fingerprint = bip32.HDKey.from_seed(seed).my_fingerprint.hex()
    return {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "fingerprint": fingerprint,  # the seed's BIP-32 master fingerprint: public, for PSBTs
        "kdf": kdf_doc,
        "cipher": {"name": "aes-256-gcm", "nonce": nonce.hex()},
        "ciphertext": sealed.hex(),
    }


def _open(entry: Mapping[str, Any], passphrase: bytes) -> bytes:
    try:
        kdf_doc = dict(entry["kdf"])
        if kdf_doc.get("name") != "argon2id" or entry["cipher"]["name"] != "aes-256-gcm":
            raise KeystoreFileError("unknown KDF or cipher")
        kdf = KdfParams(
            int(kdf_doc["time_cost"]), int(kdf_doc["memory_cost_kib"]), int(kdf_doc["parallelism"])
        )
        key = kdf.stretch(passphrase, bytes.fromhex(kdf_doc["salt"]))
        nonce = bytes.fromhex(entry["cipher"]["nonce"])
        sealed = bytes.fromhex(entry["ciphertext"])
        version = int(entry["version"])
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, KeystoreFileError):
            raise
        raise KeystoreFileError(f"malformed key entry: {exc}") from None
    try:
        seed = AESGCM(key).decrypt(nonce, sealed, _header(version, kdf_doc))
    except InvalidTag:
        raise WrongPassphrase("the passphrase does not open this keystore") from None
    if len(seed) != SEED_BYTES:
        raise KeystoreFileError("a sealed seed has the wrong length")
    return seed


def _read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeystoreFileError(f"cannot read keystore {path.name}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreFileError(f"{path.name} is not a ChainGate keystore")
    if document.get("format_version") != FORMAT_VERSION or not document.get("keys"):
        raise KeystoreFileError(f"{path.name}: unsupported keystore format or no keys")
    return document


def _write_atomically(path: Path, document: Mapping[str, Any], *, exclusive: bool) -> None:
    data = (json.dumps(document, indent=2) + "\n").encode()
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    else:
        temporary = path.with_name(path.name + ".new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def create_keystore(path: Path, passphrase: bytes, kdf: KdfParams | None = None) -> None:
    """Write a new keystore with key version 1 (mode 0600). Refuses to overwrite a file."""
    if len(passphrase) < 8:
        raise ValueError("the passphrase must have at least 8 bytes")
    entry = _seal(secrets.token_bytes(SEED_BYTES), passphrase, 1, kdf or KdfParams())
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "keys": [entry]}
    _write_atomically(path, document, exclusive=True)


def add_key_version(path: Path, passphrase: bytes, kdf: KdfParams | None = None) -> int:
    """Append a new key version (a new seed) and answer its number. The passphrase must open
    the existing versions (so one passphrase keeps opening the whole file). Raises
    WrongPassphrase, KeystoreFileError."""
    document = _read(path)
    for entry in document["keys"]:
        _open(entry, passphrase)
    version = max(int(entry["version"]) for entry in document["keys"]) + 1
    document["keys"].append(
        _seal(secrets.token_bytes(SEED_BYTES), passphrase, version, kdf or KdfParams())
    )
    _write_atomically(path, document, exclusive=False)
    return version


class FileKeyStore:
    """The unlocked file keystore: HD keys of every version, derived on demand."""

    def __init__(self, seeds: Mapping[int, bytes]) -> None:
        self._roots = {version: bip32.HDKey.from_seed(seed) for version, seed in seeds.items()}
        self._accounts: dict[tuple[int, tuple[int, ...]], bip32.HDKey] = {}
        # Signing keys recently used (a hot key signs again and again): derived once each.
        self._keys: OrderedDict[tuple[int, tuple[int, ...]], bip32.HDKey] = OrderedDict()

    @classmethod
    def unlock(cls, path: Path, passphrase: bytes) -> FileKeyStore:
        """Open every key version. Raises WrongPassphrase, KeystoreFileError."""
        document = _read(path)
        return cls({int(entry["version"]): _open(entry, passphrase) for entry in document["keys"]})

    @property
    def kind(self) -> KeyStoreKind:
        return KeyStoreKind.FILE

    def versions(self) -> tuple[int, ...]:
        return tuple(sorted(self._roots))

    def fingerprint(self, version: int) -> bytes:
        """The master fingerprint PSBT derivation fields name this version's seed by."""
        return bytes(self._root(version).my_fingerprint)

    def account_public(self, ref: KeyRef) -> bip32.HDKey:
        """The public extended key of an account-level ref (to serialize as xpub)."""
        return self._node(ref).to_public()

    def public_key(self, ref: KeyRef) -> bytes:
        return bytes(self._node(ref).get_public_key().sec())

    def sign_digest(self, ref: KeyRef, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError("a digest has 32 bytes")
        # libsecp256k1 signs deterministically (RFC 6979) and always with low S.
        compact = PrivateKey(bytes(self._node(ref).key.secret)).sign_recoverable(
            digest, hasher=None
        )
        return Signature(
            int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big"), compact[64]
        )

    def _root(self, version: int) -> bip32.HDKey:
        root = self._roots.get(version)
        if root is None:
            raise KeyNotFound(f"no file key version {version}")
        return root

    def _node(self, ref: KeyRef) -> bip32.HDKey:
        if ref.store is not KeyStoreKind.FILE:
            raise KeyNotFound(f"{ref} is not a file-keystore key")
        indexes = ref.indexes
        known = self._keys.get((ref.version, indexes))
        if known is not None:
            self._keys.move_to_end((ref.version, indexes))
            return known
        # Hardened steps are the slow part: keep each account's node, derive below it.
        account, rest = indexes[:3], indexes[3:]
        cached = self._accounts.get((ref.version, account))
        if cached is None:
            cached = self._root(ref.version).derive(list(account))
            self._accounts[(ref.version, account)] = cached
        node = cached.derive(list(rest)) if rest else cached
        self._keys[(ref.version, indexes)] = node
        if len(self._keys) > _KEY_CACHE:
            self._keys.popitem(last=False)
        return node
