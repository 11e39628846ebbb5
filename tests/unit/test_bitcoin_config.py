"""Bitcoin-family network settings: per-chain defaults, params tables, fork overrides, BIP-21."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.family import BitcoinFamily
from chaingate.adapters.chains.bitcoin.params import UnknownChainParams, params_for
from chaingate.adapters.chains.bitcoin.uri import payment_uri
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.bootstrap import load_networks
from chaingate.domain.errors import InvalidAmount, UnknownCurrency

URL = ["http://127.0.0.1:9332"]


def network(**fields: object) -> BitcoinNetworkConfig:
    return BitcoinNetworkConfig(name="n", kind="bitcoin", rpc_urls=URL, **fields)  # type: ignore[arg-type]


def test_bitcoin_defaults() -> None:
    btc = network()
    assert (btc.chain, btc.chain_network, btc.native_symbol, btc.native_decimals) == (
        "bitcoin",
        "mainnet",
        "BTC",
        8,
    )
    assert btc.required_confirmations == 3
    assert btc.track_mempool
    assert BitcoinFamily().public_chain_id(btc) is None
    assert not hasattr(btc, "chain_id")  # no EVM field on a Bitcoin network


def test_litecoin_defaults_and_regtest_confirmations() -> None:
    assert network(chain="litecoin").required_confirmations == 6
    assert network(chain="litecoin").native_symbol == "LTC"
    assert network(chain="litecoin", chain_network="regtest").required_confirmations == 1
    assert network(chain="litecoin", required_confirmations=2).required_confirmations == 2


def test_evm_still_needs_a_chain_id() -> None:
    with pytest.raises(ValidationError, match="chain_id"):
        EvmNetworkConfig(name="e", rpc_urls=URL)
    assert EvmNetworkConfig(name="e", chain_id=1, rpc_urls=URL).native_symbol == "ETH"


def test_unknown_fork_needs_chain_params() -> None:
    with pytest.raises(ValidationError, match="chain_params"):
        network(chain="dogecoin")


def test_a_fork_is_a_config_entry() -> None:
    doge = network(
        chain="dogecoin",
        native_symbol="DOGE",
        chain_params={
            "bech32_hrp": "doge",
            "p2pkh_version": 0x1E,
            "p2sh_version": 0x16,
            "xpub_versions": ["02facafd"],
            "uri_scheme": "dogecoin",
            "coin_type": 3,
            "segwit": False,
        },
    )
    params = params_for(doge)
    assert (params.p2pkh_version, params.uri_scheme, params.segwit) == (0x1E, "dogecoin", False)
    assert params.xpub_versions == (bytes.fromhex("02facafd"),)
    assert params.genesis_hash is None


def test_incomplete_fork_params_are_named() -> None:
    with pytest.raises(UnknownChainParams, match="p2pkh_version"):
        params_for(network(chain="dogecoin", chain_params={"bech32_hrp": "doge"}))


def test_override_of_a_built_in_table() -> None:
    params = params_for(network(chain="litecoin", chain_params={"p2sh_version": 5}))
    assert (params.bech32_hrp, params.p2sh_version) == ("ltc", 5)


def test_mweb_and_proof_of_work_per_chain_and_by_override() -> None:
    btc, ltc = params_for(network()), params_for(network(chain="litecoin"))
    assert (btc.mweb, btc.pow_hash, btc.pow_limit) == (False, "sha256d", 2**224 - 1)
    assert (ltc.mweb, ltc.pow_hash, ltc.pow_limit) == (True, "scrypt", 2**236 - 1)
    regtest = params_for(network(chain="litecoin", chain_network="regtest"))
    assert (regtest.mweb, regtest.pow_limit) == (True, 2**255 - 1)
    doge = params_for(
        network(
            chain="dogecoin",
            chain_params={
                "p2pkh_version": 0x1E,
                "p2sh_version": 0x16,
                "xpub_versions": ["02facafd"],
                "segwit": False,
                "pow_hash": "scrypt",
                "pow_limit": "00000" + "f" * 59,
            },
        )
    )
    assert (doge.mweb, doge.pow_hash, doge.pow_limit) == (False, "scrypt", 2**236 - 1)
    no_mweb = params_for(network(chain="litecoin", chain_params={"mweb": False}))
    assert not no_mweb.mweb
    with pytest.raises(ValidationError):
        network(chain_params={"pow_hash": "x11"})
    with pytest.raises(ValidationError):
        network(chain_params={"pow_limit": "7fff"})


def test_cookie_and_password_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="rpc_cookie_file"):
        network(rpc_cookie_file="/x/.cookie", rpc_user="u", rpc_password="p")


def test_password_not_in_repr() -> None:
    assert "hunter2" not in repr(network(rpc_user="u", rpc_password="hunter2"))


def test_tokens_are_refused_on_bitcoin() -> None:
    token = {"symbol": "USDT", "contract": "0x" + "11" * 20, "decimals": 6}
    with pytest.raises(ValidationError, match="tokens"):
        network(tokens=[token])


# ----- BIP-21 ---------------------------------------------------------------------------
ADDRESS = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"


def test_bip21_is_the_bitcoin_familys_payment_uri() -> None:
    uri = BitcoinFamily().payment_uri(network(), "BTC", ADDRESS, 100_000)
    assert uri == f"bitcoin:{ADDRESS}?amount=0.001"


def test_bip21_amount_is_exact_decimal_coins() -> None:
    assert payment_uri(network(), "BTC", ADDRESS, 2_100_000_000_000_001).endswith(
        "?amount=21000000.00000001"
    )
    assert payment_uri(network(), "BTC", ADDRESS, 1).endswith("?amount=0.00000001")
    assert payment_uri(network(), "BTC", ADDRESS, 0) == f"bitcoin:{ADDRESS}"


def test_bip21_litecoin_scheme_and_label() -> None:
    ltc = network(chain="litecoin", chain_network="regtest")
    uri = payment_uri(ltc, "LTC", "rltc1qabc", 150_000_000, label="Order #7 & co")
    assert uri == "litecoin:rltc1qabc?amount=1.5&label=Order%20%237%20%26%20co"


def test_bip21_refuses_bad_input() -> None:
    with pytest.raises(UnknownCurrency):
        payment_uri(network(), "ETH", ADDRESS, 1)
    with pytest.raises(InvalidAmount):
        payment_uri(network(), "BTC", ADDRESS, -1)
    with pytest.raises(ValueError, match="address"):
        payment_uri(network(), "BTC", "bc1q?amount=1", 1)


def test_the_readme_networks_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Bitcoin and Litecoin") :]
    example = section.split("```toml", 1)[1].split("```", 1)[0]
    networks_file = tmp_path / "networks.toml"
    networks_file.write_text(example)
    networks = load_networks(networks_file)  # the path `chaingate` itself reads it by
    assert all(isinstance(n, BitcoinNetworkConfig) for n in networks)
    loaded = [params_for(n) for n in networks if isinstance(n, BitcoinNetworkConfig)]
    assert [p.uri_scheme for p in loaded] == ["bitcoin", "dogecoin"]
    assert loaded[1].segwit is False
