"""The EVM family: everything the rest of the gateway needs to know about EVM networks."""

from __future__ import annotations

import re

from eth_utils.address import is_checksum_address

from chaingate.adapters.chains.evm.client import EvmChainClient
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver
from chaingate.adapters.chains.evm.message import personal_sign_signer
from chaingate.adapters.chains.evm.traces import TRACE_POSITION_PREFIX
from chaingate.adapters.chains.evm.uri import payment_uri
from chaingate.config import NetworkConfig
from chaingate.domain.chain import NATIVE_POSITION, ChainTimeRule
from chaingate.domain.custody import AddressRole
from chaingate.domain.errors import InvalidAddress, InvalidWallet
from chaingate.ports import AddressDeriver, ChainClient, PaymentPosition, WalletLink, WalletPolicy

METAMASK_SEND = "https://metamask.app.link/send/"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _evm(network: NetworkConfig) -> EvmNetworkConfig:
    if not isinstance(network, EvmNetworkConfig):
        raise TypeError(f"network {network.name!r} is not an EVM network")
    return network


class EvmFamily:
    """Accounts, not outputs: one address form (BIP-44 m/44'/60'/0'/0/i), no gap limit, no
    mempool view, timestamps that never go backwards, EIP-681 payment requests."""

    name = "evm"
    config_model: type[NetworkConfig] = EvmNetworkConfig
    chain_time = ChainTimeRule.BLOCK_TIMESTAMP
    wallet_policy = WalletPolicy(gap_limit=False)

    treasury_roles = frozenset(
        {AddressRole.HOT.value, AddressRole.COLD.value, AddressRole.TOKENS_COLLECTOR.value}
    )

    def __init__(self) -> None:
        self._deriver = EvmAddressDeriver()

    def normalize_address(self, network: NetworkConfig, address: str) -> str:
        if not _ADDRESS.fullmatch(address):
            raise InvalidAddress("an EVM address is 0x and 40 hex digits", field="address")
        body = address[2:]
        if body != body.lower() and body != body.upper() and not is_checksum_address(address):
            raise InvalidAddress(
                "the address's EIP-55 checksum (its mixed case) is wrong: a typo?", field="address"
            )
        return address.lower()

    def client(self, network: NetworkConfig) -> ChainClient:
        return EvmChainClient(_evm(network))

    def address_type(
        self, network: NetworkConfig, account_key: str, requested: str | None
    ) -> str | None:
        return None  # one address form; a requested script type means nothing here

    def deriver(self, network: NetworkConfig, address_type: str | None) -> AddressDeriver:
        return self._deriver

    def payment_uri(self, network: NetworkConfig, asset: str, address: str, amount: int) -> str:
        return payment_uri(_evm(network), asset, address, amount)

    def payment_position(self, position: str) -> PaymentPosition:
        # A native transfer is the transaction's value; a token transfer is one of its logs;
        # "trace:<n>" is ETH a contract paid by an internal call (traces.py).
        if position == NATIVE_POSITION or position.startswith(TRACE_POSITION_PREFIX):
            return PaymentPosition(log_index=None, output=position)
        return PaymentPosition(log_index=int(position), output=None)

    def public_chain_id(self, network: NetworkConfig) -> int | None:
        return _evm(network).chain_id

    def follows_mempool(self, network: NetworkConfig) -> bool:
        return False  # a pending EVM transaction may never be mined as seen: blocks only

    def wallet_links(self, payment_uri: str) -> tuple[WalletLink, ...]:
        if not payment_uri.startswith("ethereum:"):
            return ()
        # MetaMask's universal link takes the EIP-681 request without its scheme.
        return (WalletLink("Open in MetaMask", METAMASK_SEND + payment_uri[len("ethereum:") :]),)

    def key_origin(self, network: NetworkConfig, account_key: str, origin: str) -> str:
        raise InvalidWallet(
            "EVM wallets have no output descriptor, so no key origin to put in one",
            code="key_origin_not_supported",
            field="key_origin",
        )

    def output_descriptor(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        key_origin: str | None,
    ) -> str | None:
        return None  # accounts, not scripts: a wallet app derives m/44'/60'/0'/0/i itself

    def proves_key_control(
        self,
        network: NetworkConfig,
        account_key: str,
        address_type: str | None,
        message: str,
        signature: str,
    ) -> bool:
        signer = personal_sign_signer(message, signature)
        return signer is not None and signer == self._deriver.derive(account_key, 0)

    # Custody will add here: EIP-1559 transaction building, the nonce each payout reserves,
    # and the RLP signing payload the signer process signs (see ports.chains.ChainFamily).
