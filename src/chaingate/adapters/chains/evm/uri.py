"""EIP-681 payment request URIs, the EVM family's payment requests.

Amounts are integers in base units (wei, token units), never decimals: EIP-681's `value` and
`uint256` parameters are integers, and wallets that see a fraction may round it.
"""

from __future__ import annotations

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.parse import is_address
from chaingate.domain.errors import InvalidAmount, UnknownCurrency


def payment_uri(network: EvmNetworkConfig, asset: str, address: str, amount: int) -> str:
    """`ethereum:<to>@<chain>?value=<wei>` for the native asset,
    `ethereum:<token>@<chain>/transfer?address=<to>&uint256=<units>` for a whitelisted token.

    Raises UnknownCurrency for an asset the network does not configure, InvalidAmount for a
    negative or non-integer amount, ValueError for a malformed address.
    """
    if type(amount) is not int or amount < 0:
        raise InvalidAmount(f"amount must be a non-negative integer of base units: {amount!r}")
    if not is_address(address):
        raise ValueError(f"not an EVM address: {address!r}")
    recipient = address.lower()
    if asset == network.native_symbol:
        return f"ethereum:{recipient}@{network.chain_id}?value={amount}"
    token = network.token(asset)
    if token is None:
        raise UnknownCurrency(f"{asset} is not configured on network {network.name}")
    return (
        f"ethereum:{token.contract.lower()}@{network.chain_id}/transfer"
        f"?address={recipient}&uint256={amount}"
    )
