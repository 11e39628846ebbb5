"""EIP-681 payment URIs: integer base units, chain id, the transfer form for tokens."""

from __future__ import annotations

import pytest

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.adapters.chains.evm.uri import payment_uri
from chaingate.config import TokenConfig
from chaingate.domain.errors import InvalidAmount, UnknownCurrency

TOKEN = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
TO = "0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266"
NETWORK = EvmNetworkConfig(
    name="mainnet",
    chain_id=1,
    rpc_urls=["http://127.0.0.1:8545"],
    tokens=[TokenConfig(symbol="USDT", contract=TOKEN, decimals=6)],
)


def test_it_is_the_evm_familys_payment_uri() -> None:
    assert EvmFamily().payment_uri(NETWORK, "ETH", TO, 1) == payment_uri(NETWORK, "ETH", TO, 1)
    assert EvmFamily().payment_uri(NETWORK, "ETH", TO, 1).startswith("ethereum:")


def test_native_payment_carries_wei_as_an_integer() -> None:
    assert payment_uri(NETWORK, "ETH", TO, 25 * 10**16) == (
        "ethereum:0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266@1?value=250000000000000000"
    )


def test_large_amounts_stay_exact() -> None:
    amount = 123_456_789_012_345_678_901_234_567
    assert payment_uri(NETWORK, "ETH", TO, amount).endswith(f"?value={amount}")


def test_token_payment_uses_the_transfer_function_form() -> None:
    assert payment_uri(NETWORK, "USDT", TO, 12_500_000) == (
        "ethereum:0xdac17f958d2ee523a2206206994597c13d831ec7@1/transfer"
        "?address=0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266&uint256=12500000"
    )


def test_the_chain_id_is_the_networks() -> None:
    other = NETWORK.model_copy(update={"chain_id": 31337})
    assert "@31337?" in payment_uri(other, "ETH", TO, 1)


def test_unknown_assets_are_refused() -> None:
    with pytest.raises(UnknownCurrency):
        payment_uri(NETWORK, "DAI", TO, 1)


@pytest.mark.parametrize("amount", [-1, 1.5, True])
def test_amounts_must_be_non_negative_integers(amount: object) -> None:
    with pytest.raises(InvalidAmount):
        payment_uri(NETWORK, "ETH", TO, amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", ["0x1234", "f39fd6e51aad88f6f4ce6ab8827279cfffb92266", ""])
def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        payment_uri(NETWORK, "ETH", address, 1)
