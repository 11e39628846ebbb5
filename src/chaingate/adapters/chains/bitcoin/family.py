"""The Bitcoin family (Bitcoin, Litecoin, any Core fork given its parameters): everything the
rest of the gateway needs to know about it."""

from __future__ import annotations

from chaingate.adapters.chains.bitcoin.address import BadAddress, output_script
from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import (
    ADDRESS_TYPES,
    DEFAULT_ADDRESS_TYPE,
    BitcoinAddressDeriver,
    implied_address_type,
)
from chaingate.adapters.chains.bitcoin.descriptor import normalize_key_origin, receive_descriptor
from chaingate.adapters.chains.bitcoin.message import signer_public_key
from chaingate.adapters.chains.bitcoin.params import ChainParams, params_for
from chaingate.adapters.chains.bitcoin.uri import payment_uri
from chaingate.config import NetworkConfig
from chaingate.domain.chain import ChainTimeRule
from chaingate.domain.custody import AddressRole
from chaingate.domain.errors import InvalidAddress, InvalidWallet
from chaingate.ports import AddressDeriver, ChainClient, PaymentPosition, WalletLink, WalletPolicy


def _bitcoin(network: NetworkConfig) -> BitcoinNetworkConfig:
    if not isinstance(network, BitcoinNetworkConfig):
        raise TypeError(f"network {network.name!r} is not a Bitcoin-family network")
    return network


class BitcoinFamily:
    """Outputs, not accounts: script types per wallet, a gap limit wallet apps scan with, a
    mempool worth following, median-time-past as the chain's clock, BIP-21 payment requests."""

    name = "bitcoin"
    config_model: type[NetworkConfig] = BitcoinNetworkConfig
    chain_time = ChainTimeRule.MEDIAN_TIME_PAST
    wallet_policy = WalletPolicy(gap_limit=True, address_types=tuple(ADDRESS_TYPES))

    treasury_roles = frozenset({AddressRole.HOT.value, AddressRole.COLD.value})

    def normalize_address(self, network: NetworkConfig, address: str) -> str:
        params = params_for(_bitcoin(network))
        try:
            output_script(address, params)
        except BadAddress:
            raise InvalidAddress(
                f"not a {params.chain} {params.network} address", field="address"
            ) from None
        # bech32 is case-insensitive (lower case is canonical); base58 is not.
        bech32 = params.bech32_hrp and address.lower().startswith(params.bech32_hrp + "1")
        return address.lower() if bech32 else address

    def __init__(self) -> None:
        # Derivers by (chain parameters, script type): built once, shared by every wallet.
        self._derivers: dict[tuple[ChainParams, str], BitcoinAddressDeriver] = {}

    def client(self, network: NetworkConfig) -> ChainClient:
        return BitcoinChainClient(_bitcoin(network))

    def address_type(
        self, network: NetworkConfig, account_key: str, requested: str | None
    ) -> str | None:
        """As requested, else as the key's SLIP-132 version names it (ypub: p2sh-p2wpkh),
        else p2wpkh; p2pkh on a chain without SegWit. Raises InvalidWallet."""
        params = params_for(_bitcoin(network))
        if not params.segwit:
            if requested not in (None, "p2pkh"):
                raise InvalidWallet(
                    f"{params.chain} has no SegWit: only p2pkh addresses",
                    code="address_type_unsupported",
                    field="address_type",
                )
            return "p2pkh"
        if requested is not None:
            return requested
        return implied_address_type(params, account_key) or DEFAULT_ADDRESS_TYPE

    def deriver(self, network: NetworkConfig, address_type: str | None) -> AddressDeriver:
        return self._deriver(network, address_type)

    def _deriver(self, network: NetworkConfig, address_type: str | None) -> BitcoinAddressDeriver:
        key = (params_for(_bitcoin(network)), address_type or DEFAULT_ADDRESS_TYPE)
        if key not in self._derivers:
            self._derivers[key] = BitcoinAddressDeriver(*key)
        return self._derivers[key]

    def payment_uri(self, network: NetworkConfig, asset: str, address: str, amount: int) -> str:
        return payment_uri(_bitcoin(network), asset, address, amount)

    def payment_position(self, position: str) -> PaymentPosition:
        return PaymentPosition(log_index=None, output=position)  # the output index (vout)

    def public_chain_id(self, network: NetworkConfig) -> int | None:
        return None  # transactions carry no chain id; the genesis hash identifies the chain

    def follows_mempool(self, network: NetworkConfig) -> bool:
        return _bitcoin(network).track_mempool

    def wallet_links(self, payment_uri: str) -> tuple[WalletLink, ...]:
        return ()  # BIP-21 is the link every wallet reads

    def key_origin(self, network: NetworkConfig, account_key: str, origin: str) -> str:
        _bitcoin(network)
        return normalize_key_origin(account_key, origin)

    def output_descriptor(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        key_origin: str | None,
    ) -> str | None:
        _bitcoin(network)
        return receive_descriptor(account_key, address_type or DEFAULT_ADDRESS_TYPE, key_origin)

    def proves_key_control(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        message: str,
        signature: str,
    ) -> bool:
        deriver = self._deriver(network, address_type)
        signer = signer_public_key(deriver.params.message_magic, message, signature)
        return signer is not None and signer == deriver.receive_public_key(account_key, 0)

    # Custody will add here: UTXO selection and change, fee from sat/vB times virtual size,
    # locking the outputs a transaction in flight spends, and the PSBT the signer signs (see
    # ports.chains.ChainFamily).
