"""The file keystore: argon2id + AES-256-GCM per key version, on a real file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from coincurve import PublicKey

from chaingate.domain.custody import KeyRef, KeyStoreKind
from chaingate.signer.ecdsa import CURVE_ORDER
from chaingate.signer.keystores import KeyNotFound
from chaingate.signer.keystores.file import (
    FileKeyStore,
    KdfParams,
    KeystoreFileError,
    WrongPassphrase,
    add_key_version,
    create_keystore,
)

PASSPHRASE = b"correct horse battery staple"
FAST = KdfParams.fast()


def _ref(version: int, path: str = "m/44'/60'/0'/0/0") -> KeyRef:
    return KeyRef(KeyStoreKind.FILE, version, path=path)


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "keystore.json"
    create_keystore(path, PASSPHRASE, FAST)
    return path


def test_round_trip_opens_the_same_keys_and_the_file_is_private(keystore: Path) -> None:
    first = FileKeyStore.unlock(keystore, PASSPHRASE)
    again = FileKeyStore.unlock(keystore, PASSPHRASE)
    assert first.versions() == (1,)
    assert first.public_key(_ref(1)) == again.public_key(_ref(1))
    assert first.fingerprint(1) == again.fingerprint(1)
    assert stat.S_IMODE(os.stat(keystore).st_mode) == 0o600
    document = json.loads(keystore.read_text())
    assert document["keys"][0]["kdf"]["name"] == "argon2id"
    assert document["keys"][0]["cipher"]["name"] == "aes-256-gcm"


def test_a_wrong_passphrase_opens_nothing(keystore: Path) -> None:
    with pytest.raises(WrongPassphrase):
        FileKeyStore.unlock(keystore, b"correct horse battery stapler")


def test_weakened_kdf_parameters_are_caught_by_the_tag(keystore: Path) -> None:
    # The KDF settings are authenticated with the seed: lowering the cost in the file (to
    # brute-force faster) makes the passphrase fail instead of silently working.
    document = json.loads(keystore.read_text())
    document["keys"][0]["kdf"]["time_cost"] = 2
    keystore.write_text(json.dumps(document))
    with pytest.raises(WrongPassphrase):
        FileKeyStore.unlock(keystore, PASSPHRASE)


def test_a_file_that_is_no_keystore_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    path.write_text('{"format": "something-else"}')
    with pytest.raises(KeystoreFileError):
        FileKeyStore.unlock(path, PASSPHRASE)


def test_create_never_overwrites_and_wants_a_real_passphrase(keystore: Path) -> None:
    before = keystore.read_bytes()
    with pytest.raises(FileExistsError):
        create_keystore(keystore, PASSPHRASE, FAST)
    assert keystore.read_bytes() == before
    with pytest.raises(ValueError, match="at least 8"):
        create_keystore(keystore.with_name("other.json"), b"short", FAST)


def test_the_seed_and_private_keys_are_not_in_the_file(keystore: Path) -> None:
    store = FileKeyStore.unlock(keystore, PASSPHRASE)
    node = store._node(_ref(1))  # the private key of one address, to look for
    secret = bytes(node.key.secret).hex()
    text = keystore.read_text()
    assert secret not in text
    assert PASSPHRASE.decode() not in text


def test_rotation_adds_a_version_and_old_refs_keep_their_keys(keystore: Path) -> None:
    before = FileKeyStore.unlock(keystore, PASSPHRASE)
    assert add_key_version(keystore, PASSPHRASE, FAST) == 2
    after = FileKeyStore.unlock(keystore, PASSPHRASE)
    assert after.versions() == (1, 2)
    assert after.public_key(_ref(1)) == before.public_key(_ref(1))
    assert after.public_key(_ref(2)) != after.public_key(_ref(1))
    assert after.fingerprint(2) != after.fingerprint(1)
    assert stat.S_IMODE(os.stat(keystore).st_mode) == 0o600


def test_rotation_with_a_wrong_passphrase_changes_nothing(keystore: Path) -> None:
    before = keystore.read_bytes()
    with pytest.raises(WrongPassphrase):
        add_key_version(keystore, b"not the passphrase", FAST)
    assert keystore.read_bytes() == before


def test_signatures_are_low_s_and_recover_the_key(keystore: Path) -> None:
    store = FileKeyStore.unlock(keystore, PASSPHRASE)
    for index in range(20):
        ref = _ref(1, f"m/44'/60'/0'/0/{index}")
        digest = bytes([index]) * 32
        signature = store.sign_digest(ref, digest)
        assert signature.s <= CURVE_ORDER // 2
        recovered = PublicKey.from_signature_and_message(signature.compact(), digest, hasher=None)
        assert recovered.format() == store.public_key(ref)


def test_an_unknown_version_is_no_key(keystore: Path) -> None:
    store = FileKeyStore.unlock(keystore, PASSPHRASE)
    with pytest.raises(KeyNotFound):
        store.public_key(_ref(7))
