"""TOTP against RFC 6238's own test vectors, plus the one-use and drift rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chaingate.adapters.totp import (
    code_at,
    matching_step,
    new_secret,
    provisioning_uri,
    step_at,
)

RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of b"12345678901234567890"


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc6238_sha1_vectors(unix_time: int, code: str) -> None:
    moment = datetime.fromtimestamp(unix_time, UTC)
    assert code_at(RFC_SECRET, step_at(moment), digits=8) == code


def test_codes_near_now_match_once_and_far_ones_never() -> None:
    secret = new_secret()
    now = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    current = step_at(now)
    assert matching_step(secret, code_at(secret, current), now, None) == current
    assert matching_step(secret, code_at(secret, current - 1), now, None) == current - 1
    assert matching_step(secret, code_at(secret, current + 1), now, None) == current + 1
    assert matching_step(secret, code_at(secret, current - 2), now, None) is None
    assert matching_step(secret, code_at(secret, current), now, current) is None  # replay
    later = now + timedelta(seconds=30)
    assert matching_step(secret, code_at(secret, current + 1), later, current) == current + 1


def test_malformed_codes_never_match() -> None:
    secret = new_secret()
    now = datetime(2026, 3, 1, tzinfo=UTC)
    good = code_at(secret, step_at(now))
    assert matching_step(secret, f" {good[:3]} {good[3:]} ", now, None) == step_at(now)
    for bad in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦", good + "0"):
        assert matching_step(secret, bad, now, None) is None


def test_provisioning_uri_is_what_authenticator_apps_read() -> None:
    secret = new_secret()
    assert len(secret) == 32
    uri = urlsplit(provisioning_uri(secret, "owner@shop.example"))
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert uri.path == "/ChainGate%3Aowner%40shop.example"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret] and query["issuer"] == ["ChainGate"]
