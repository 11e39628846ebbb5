"""The signer's policy file: what loads, what is refused, and add-destination's edit."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaingate.signer.policy import Destination, PolicyError, add_destination, load_policy
from chaingate.signer.throwaway import render_policy
from tests.support.signer import evm_policy, ltc_policy

COLD_ETH = "0x" + "c0" * 20


def _write(tmp_path: Path, networks: dict, destinations: tuple = ()) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "policy.toml"
    path.write_text(render_policy(networks, destinations))
    return path


def test_a_policy_loads_with_amounts_in_base_units(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "anvil": evm_policy(31337, limits={"ETH": {"per_tx": "1.5", "per_day": "10"}}),
            "ltc": ltc_policy(),
        },
        ({"network": "anvil", "merchant": "mer_A", "address": COLD_ETH},),
    )
    policy = load_policy(path)
    anvil = policy.networks["anvil"]
    assert anvil.limit_units("ETH") == (15 * 10**17, 10 * 10**18)
    assert anvil.max_fee_units() == 5 * 10**16
    assert set(policy.listed("anvil", "mer_A", frozenset({"cold"}))) == {COLD_ETH}
    assert policy.listed("anvil", "mer_B", frozenset({"cold"})) == {}
    assert len(policy.digest) == 64


@pytest.mark.parametrize(
    ("networks", "destinations", "message"),
    [
        ({"anvil": {**evm_policy(31337), "chain_id": 0}}, (), "chain_id"),
        ({"anvil": evm_policy(31337, limits={"DOGE": {"per_tx": "1"}})}, (), "unknown asset"),
        ({"anvil": {**evm_policy(31337), "max_fee": "lots"}}, (), "max_fee"),
        ({"anvil": {**evm_policy(31337), "surprise": 1}}, (), "surprise"),
        ({"ltc": ltc_policy(chain="dogecoin")}, (), "no built-in parameters"),
        (
            {"anvil": evm_policy(31337)},
            ({"network": "eth", "address": COLD_ETH},),
            "unknown network",
        ),
        ({"ltc": ltc_policy()}, ({"network": "ltc", "address": COLD_ETH},), "address"),
    ],
)
def test_an_unusable_policy_is_refused_with_its_reason(
    tmp_path: Path,
    networks: dict,
    destinations: tuple,
    message: str,  # type: ignore[type-arg]
) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, networks, destinations))


def test_add_destination_appends_and_keeps_the_operators_comments(tmp_path: Path) -> None:
    path = _write(tmp_path, {"anvil": evm_policy(31337)})
    path.write_text("# the operator's note\n" + path.read_text())
    policy = add_destination(
        path, Destination(network="anvil", merchant="mer_A", address=COLD_ETH, label="vault")
    )
    assert COLD_ETH in policy.listed("anvil", "mer_A", frozenset({"cold"}))
    assert path.read_text().startswith("# the operator's note\n")


def test_add_destination_refuses_a_bad_address_and_leaves_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, {"ltc": ltc_policy()})
    before = path.read_text()
    with pytest.raises(PolicyError):
        add_destination(path, Destination(network="ltc", address=COLD_ETH))
    assert path.read_text() == before
    assert not path.with_name("policy.toml.new").exists()
