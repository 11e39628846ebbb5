"""Key refs and the custody error types: the vocabulary both sides of the signer boundary use."""

from __future__ import annotations

import pytest

from chaingate.domain.custody import (
    HARDENED,
    KeyRef,
    KeyStoreKind,
    SignerRefused,
    format_path,
    parse_path,
)


def test_a_path_reads_and_prints_back() -> None:
    indexes = parse_path("m/84'/1'/3'/0/12")
    assert indexes == (84 + HARDENED, 1 + HARDENED, 3 + HARDENED, 0, 12)
    assert format_path(indexes) == "m/84'/1'/3'/0/12"


@pytest.mark.parametrize(
    "path", ["", "m/", "84'/1'", "m/84h/1", "m/2147483648", "m/1'/x", "m//1", "M/1"]
)
def test_a_malformed_path_is_refused(path: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is the path itself
        parse_path(path)


def test_key_refs_print_and_parse_back() -> None:
    hd = KeyRef(KeyStoreKind.FILE, 2, path="m/44'/60'/7'")
    assert str(hd.child(0, 12)) == "file:2:m/44'/60'/7'/0/12"
    assert KeyRef.parse(str(hd.child(0, 12))) == hd.child(0, 12)
    hsm = KeyRef(KeyStoreKind.PKCS11, 1, label="cg-v1-hot-3")
    assert KeyRef.parse(str(hsm)) == hsm


@pytest.mark.parametrize(
    "make",
    [
        lambda: KeyRef(KeyStoreKind.FILE, 1),  # no path
        lambda: KeyRef(KeyStoreKind.FILE, 0, path="m/1"),  # version 0
        lambda: KeyRef(KeyStoreKind.FILE, 1, path="m/1", label="x"),
        lambda: KeyRef(KeyStoreKind.PKCS11, 1, path="m/1"),
        lambda: KeyRef(KeyStoreKind.PKCS11, 1, label="has space"),
        lambda: KeyRef.parse("file:one:m/1"),
        lambda: KeyRef.parse("disk:1:m/1"),
        lambda: KeyRef(KeyStoreKind.FILE, 1, path="m/1").child(HARDENED),
    ],
)
def test_an_impossible_key_ref_is_refused(make: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        make()  # type: ignore[operator]


def test_a_refusal_carries_its_reason_and_maps_to_a_problem() -> None:
    refused = SignerRefused("fee_over_ceiling", "max fee 3 gwei over 2 gwei")
    assert refused.reason_code == "fee_over_ceiling"
    assert (refused.code, refused.status) == ("signer_refused", 422)
    assert "fee_over_ceiling" in refused.detail
