"""BIP-21 payment request URIs, the Bitcoin family's payment requests.

`bitcoin:<address>?amount=<decimal coins>` (`litecoin:` and a fork's configured scheme alike).
BIP-21 amounts are decimal coins, never an exponent or a float: they are rendered from the
integer base units by domain.money.
"""

from __future__ import annotations

from urllib.parse import quote

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.params import params_for
from chaingate.domain.errors import InvalidAmount, UnknownCurrency
from chaingate.domain.money import format_amount


def payment_uri(
    network: BitcoinNetworkConfig, asset: str, address: str, amount: int, label: str | None = None
) -> str:
    """`<scheme>:<address>?amount=<coins>[&label=<label>]`; without `amount` when it is 0.

    Raises UnknownCurrency for an asset other than the native coin, InvalidAmount for a
    negative or non-integer amount, ValueError for an address with characters a URI cannot hold.
    """
    if asset != network.native_symbol:
        raise UnknownCurrency(f"{asset} is not configured on network {network.name}")
    if type(amount) is not int or amount < 0:
        raise InvalidAmount(f"amount must be a non-negative integer of base units: {amount!r}")
    if not address.isalnum() or not address.isascii():
        raise ValueError(f"not a Bitcoin-family address: {address!r}")
    scheme = params_for(network).uri_scheme
    query = []
    if amount > 0:
        query.append(f"amount={format_amount(amount, network.native_decimals)}")
    if label:
        query.append(f"label={quote(label, safe='')}")
    return f"{scheme}:{address}" + (f"?{'&'.join(query)}" if query else "")
