"""The ChainGate-Signature header, checked against an independent HMAC computation."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from chaingate.adapters.webhook_sender import sign, verify

SECRET = "whsec_3q2+7wAAAAexampleexampleexampleexample"
BODY = '{"id":"evt_01","type":"invoice.settled","data":{"amount":"1.50","note":"ünï"}}'
T = 1_735_732_800


def independent_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_signature_is_hmac_sha256_of_timestamp_dot_raw_body() -> None:
    expected = independent_signature(SECRET, T, BODY.encode())
    assert sign(SECRET, T, BODY) == f"t={T},v1={expected}"
    assert sign(SECRET, T, BODY.encode()) == sign(SECRET, T, BODY)
    assert len(expected) == 64


def test_signature_depends_on_every_input() -> None:
    reference = sign(SECRET, T, BODY)
    assert sign(SECRET + "x", T, BODY) != reference
    assert sign(SECRET, T + 1, BODY) != reference
    assert sign(SECRET, T, BODY + " ") != reference


def test_verify_accepts_a_fresh_genuine_signature() -> None:
    header = sign(SECRET, T, BODY)
    assert verify(SECRET, header, BODY, tolerance_s=300, now=T)
    assert verify(SECRET, header, BODY.encode(), tolerance_s=300, now=T + 299)
    assert verify(SECRET, header, BODY, tolerance_s=300, now=T - 299)  # small clock skew


def test_verify_rejects_a_tampered_body() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY.replace("1.50", "9.50"), now=T)
    assert not verify(SECRET, header, BODY + "\n", now=T)
    # Same JSON, re-serialised: the signature is over bytes, not over the object.
    assert not verify(SECRET, header, BODY.replace(",", ", "), now=T)


def test_verify_rejects_old_and_far_future_timestamps() -> None:
    header = sign(SECRET, T, BODY)
    assert not verify(SECRET, header, BODY, tolerance_s=300, now=T + 301)
    assert not verify(SECRET, header, BODY, tolerance_s=300, now=T - 301)


def test_verify_rejects_a_replayed_signature_under_a_new_timestamp() -> None:
    signature = sign(SECRET, T, BODY).split("v1=")[1]
    assert not verify(SECRET, f"t={T + 600},v1={signature}", BODY, now=T + 600)


def test_verify_rejects_the_wrong_secret_and_a_forged_signature() -> None:
    assert not verify("whsec_other", sign(SECRET, T, BODY), BODY, now=T)
    assert not verify(SECRET, f"t={T},v1={'0' * 64}", BODY, now=T)


def test_verify_accepts_any_matching_v1_among_several() -> None:
    good = sign(SECRET, T, BODY).split("v1=")[1]
    assert verify(SECRET, f"t={T}, v1={'f' * 64}, v1={good}", BODY, now=T)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"t={T}", "v1=abc", f"t=abc,v1={'0' * 64}", f"t=-{T},v1=00", "t=,v1="],
)
def test_verify_rejects_malformed_headers(header: str) -> None:
    assert not verify(SECRET, header, BODY, now=T)


def test_verify_defaults_to_the_current_time() -> None:
    now = int(time.time())
    assert verify(SECRET, sign(SECRET, now, BODY), BODY)
    assert not verify(SECRET, sign(SECRET, now - 3600, BODY), BODY)
