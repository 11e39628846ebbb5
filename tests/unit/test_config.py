from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.config import NetworkConfig, Settings, TokenConfig

USDT = "0x5fbdb2315678afecb367f032d93f642f64180aa3"


def network(**overrides: object) -> NetworkConfig:
    fields: dict[str, object] = {"name": "eth", "chain_id": 1, "rpc_urls": ["http://node"]}
    fields.update(overrides)
    return EvmNetworkConfig(**fields)  # type: ignore[arg-type]


def test_dust_thresholds_in_base_units() -> None:
    config = network(
        native_min_amount="0.0001",
        tokens=[TokenConfig(symbol="USDT", contract=USDT, decimals=6, min_amount="0.01")],
    )
    assert config.min_amount("ETH") == 10**14
    assert config.min_amount("USDT") == 10_000
    assert network().min_amount("ETH") == 0


@pytest.mark.parametrize("threshold", ["0.0000001", "abc", "-1"])
def test_a_bad_dust_threshold_is_refused_at_load(threshold: str) -> None:
    with pytest.raises(ValidationError, match="dust threshold"):
        network(
            tokens=[TokenConfig(symbol="USDT", contract=USDT, decimals=6, min_amount=threshold)]
        )


def test_webhook_allowed_networks_read_as_comma_separated_cidrs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHAINGATE_WEBHOOK_ALLOWED_NETWORKS", " 10.20.0.0/24, fd00::/8 ,")
    assert [str(n) for n in Settings().webhook_allowed_networks] == ["10.20.0.0/24", "fd00::/8"]
    monkeypatch.setenv("CHAINGATE_WEBHOOK_ALLOWED_NETWORKS", "10.20.0.1/24")  # host bits set
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("CHAINGATE_WEBHOOK_ALLOWED_NETWORKS")
    assert Settings().webhook_allowed_networks == []
