"""Webhook signing secrets: generated with enough entropy, sealed with AES-256-GCM at rest."""

from __future__ import annotations

import base64
import re

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chaingate.adapters.secrets import SecretBox
from chaingate.domain.errors import SecretDecryptionError
from chaingate.services.webhooks import generate_webhook_secret

MASTER = "0123456789abcdef0123456789abcdef-test-master-key"
SECRET = "whsec_example-signing-secret"


def test_round_trip() -> None:
    box = SecretBox(MASTER)
    assert box.decrypt(box.encrypt(SECRET)) == SECRET
    assert box.decrypt(box.encrypt("")) == ""
    assert box.decrypt(box.encrypt("ünïcødé ✓")) == "ünïcødé ✓"


def test_ciphertext_is_versioned_fresh_and_hides_the_plaintext() -> None:
    box = SecretBox(MASTER)
    first, second = box.encrypt(SECRET), box.encrypt(SECRET)
    assert first.startswith("v1:")
    assert second.startswith("v1:")
    assert first != second  # a new nonce every time
    assert SECRET not in first
    assert "example" not in base64.urlsafe_b64decode(first[3:]).decode("latin-1")


def test_format_is_aes_256_gcm_under_an_hkdf_key() -> None:
    """An independent decryption pins the documented format, so stored rows stay readable."""
    sealed = SecretBox(MASTER).encrypt(SECRET)
    raw = base64.urlsafe_b64decode(sealed.removeprefix("v1:"))
    key = HKDF(
        algorithm=SHA256(),
        length=32,
        salt=b"chaingate",
        info=b"chaingate/webhook-signing-secrets/v1",
    ).derive(MASTER.encode())
    plain = AESGCM(key).decrypt(raw[:12], raw[12:], b"chaingate:webhook-secret:v1")
    assert plain.decode() == SECRET
    assert len(raw) == 12 + len(SECRET.encode()) + 16


def test_another_master_key_cannot_open_it() -> None:
    sealed = SecretBox(MASTER).encrypt(SECRET)
    with pytest.raises(SecretDecryptionError, match="wrong secret_key"):
        SecretBox(MASTER + "x").decrypt(sealed)


def test_any_altered_byte_is_detected() -> None:
    box = SecretBox(MASTER)
    raw = bytearray(base64.urlsafe_b64decode(box.encrypt(SECRET)[3:]))
    for position in (0, 11, 12, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[position] ^= 0x01
        with pytest.raises(SecretDecryptionError):
            box.decrypt("v1:" + base64.urlsafe_b64encode(bytes(altered)).decode())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "plaintext-secret",
        "v2:AAAA",
        "v1:",
        "v1:not base64 at all!",
        "v1:" + base64.urlsafe_b64encode(b"short").decode(),
    ],
)
def test_malformed_values_are_refused(token: str) -> None:
    with pytest.raises(SecretDecryptionError):
        SecretBox(MASTER).decrypt(token)


def test_an_empty_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretBox("")


def test_repr_does_not_show_the_key() -> None:
    assert MASTER not in repr(SecretBox(MASTER))


def test_generated_secrets_carry_256_random_bits() -> None:
    secrets = {generate_webhook_secret() for _ in range(200)}
    assert len(secrets) == 200
    for secret in secrets:
        assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret), secret
        body = secret.removeprefix("whsec_")
        assert len(base64.urlsafe_b64decode(body + "=")) == 32
