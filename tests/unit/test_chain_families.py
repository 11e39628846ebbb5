"""The family table: networks files are read per family, an unknown kind stops start-up, and
each family answers for its own networks only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.bootstrap import FAMILIES, build_container, family_of, load_networks
from chaingate.config import NetworkConfig, Settings
from chaingate.domain.chain import ChainTimeRule
from chaingate.domain.errors import ConfigurationError

README = Path(__file__).resolve().parents[2] / "README.md"


def toml_examples() -> list[str]:
    """The README's networks files (its other TOML, the signer's policy, is not one)."""
    text = README.read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```toml")[1:]]
    return [block for block in blocks if block.lstrip("\n").startswith("# networks.toml")]


def networks_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "networks.toml"
    path.write_text(text)
    return path


def test_every_readme_networks_example_loads_into_its_familys_model(tmp_path: Path) -> None:
    loaded = [n for text in toml_examples() for n in load_networks(networks_file(tmp_path, text))]
    assert [(n.name, type(n)) for n in loaded] == [
        ("ethereum", EvmNetworkConfig),
        ("bitcoin", BitcoinNetworkConfig),
        ("dogecoin", BitcoinNetworkConfig),
    ]
    assert [family_of(n).name for n in loaded] == ["evm", "bitcoin", "bitcoin"]


def test_a_table_without_kind_is_evm_as_before(tmp_path: Path) -> None:
    path = networks_file(tmp_path, '[networks.eth]\nchain_id = 1\nrpc_urls = ["http://node"]\n')
    [network] = load_networks(path)
    assert isinstance(network, EvmNetworkConfig)
    assert network.chain_id == 1


def test_an_unknown_kind_is_a_configuration_error_naming_the_known_ones(tmp_path: Path) -> None:
    path = networks_file(tmp_path, '[networks.tron]\nkind = "tron"\nrpc_urls = ["http://n"]\n')
    with pytest.raises(ConfigurationError) as info:
        load_networks(path)
    message = str(info.value)
    assert "'tron'" in message
    assert "known kinds: bitcoin, evm" in message


@pytest.mark.parametrize(
    ("table", "refused"),
    [
        ('kind = "bitcoin"\nchain_id = 1\n', "chain_id"),  # an EVM field on a Bitcoin network
        ('kind = "bitcoin"\nws_url = "ws://n"\n', "ws_url"),
        ('kind = "evm"\nchain_id = 1\ntrack_mempool = true\n', "track_mempool"),  # and back
        ('kind = "evm"\nchain_id = 1\nchain = "litecoin"\n', "chain"),
    ],
)
def test_a_field_of_another_family_is_refused(tmp_path: Path, table: str, refused: str) -> None:
    path = networks_file(tmp_path, f'[networks.n]\n{table}rpc_urls = ["http://n"]\n')
    with pytest.raises(ConfigurationError, match=f"(?s)network 'n'.*\\n{refused}\\n.*Extra inputs"):
        load_networks(path)


class TronNetworkConfig(NetworkConfig):
    """A network of a family the gateway does not have."""

    kind: Literal["tron"] = "tron"
    native_symbol: str = "TRX"
    native_decimals: int = 6
    required_confirmations: int = 19


def test_start_up_refuses_a_network_no_family_serves() -> None:
    tron = TronNetworkConfig(name="tron", rpc_urls=["http://n"])
    with pytest.raises(ConfigurationError, match="known kinds: bitcoin, evm"):
        build_container(Settings(networks=[tron], dev_mode=True))
    with pytest.raises(ConfigurationError):
        family_of(tron)  # no family hands out a client, EVM included


def test_the_base_network_model_is_not_a_network() -> None:
    with pytest.raises(ValueError, match="family's model"):
        NetworkConfig(
            name="x", kind="evm", rpc_urls=["http://n"], native_symbol="ETH", native_decimals=18,
            required_confirmations=1,
        )  # fmt: skip


def test_the_table_holds_one_object_per_family() -> None:
    assert sorted(FAMILIES) == ["bitcoin", "evm"]
    assert all(name == family.name for name, family in FAMILIES.items())


def test_each_family_answers_for_its_own_networks_only() -> None:
    eth = EvmNetworkConfig(name="eth", chain_id=8453, rpc_urls=["http://n"])
    ltc = BitcoinNetworkConfig(name="ltc", chain="litecoin", rpc_urls=["http://n"])
    evm, bitcoin = EvmFamily(), BitcoinFamily()
    with pytest.raises(TypeError, match="not an EVM network"):
        evm.client(ltc)
    with pytest.raises(TypeError, match="not a Bitcoin-family network"):
        bitcoin.payment_uri(eth, "ETH", "0x" + "12" * 20, 1)
    assert (evm.public_chain_id(eth), bitcoin.public_chain_id(ltc)) == (8453, None)
    assert (evm.follows_mempool(eth), bitcoin.follows_mempool(ltc)) == (False, True)
    no_mempool = BitcoinNetworkConfig(
        name="l", chain="litecoin", rpc_urls=["x"], track_mempool=False
    )
    assert not bitcoin.follows_mempool(no_mempool)
    assert evm.chain_time is ChainTimeRule.BLOCK_TIMESTAMP
    assert bitcoin.chain_time is ChainTimeRule.MEDIAN_TIME_PAST
    assert (evm.wallet_policy.gap_limit, bitcoin.wallet_policy.gap_limit) == (False, True)


def test_payment_positions_read_as_before() -> None:
    evm, bitcoin = EvmFamily(), BitcoinFamily()
    native, token, vout = (
        evm.payment_position("native"),
        evm.payment_position("7"),
        bitcoin.payment_position("1"),
    )
    assert (native.log_index, native.output) == (None, "native")
    assert (token.log_index, token.output) == (7, None)
    assert (vout.log_index, vout.output) == (None, "1")


def test_address_type_choice_per_family() -> None:
    ltc = BitcoinNetworkConfig(name="ltc", chain="litecoin", rpc_urls=["http://n"])
    eth = EvmNetworkConfig(name="eth", chain_id=1, rpc_urls=["http://n"])
    assert EvmFamily().address_type(eth, "xpub...", "p2tr") is None
    bitcoin = BitcoinFamily()
    assert bitcoin.address_type(ltc, "Ltub...", "p2tr") == "p2tr"
    # One deriver per (chain parameters, script type), shared by every wallet and network.
    deriver = bitcoin.deriver(ltc, "p2sh-p2wpkh")
    twin = BitcoinNetworkConfig(name="other", chain="litecoin", rpc_urls=["http://m"])
    assert bitcoin.deriver(twin, "p2sh-p2wpkh") is deriver
    assert bitcoin.deriver(ltc, None) is not deriver  # the default, p2wpkh
