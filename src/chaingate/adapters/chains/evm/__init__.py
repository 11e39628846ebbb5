"""The EVM chain family: JSON-RPC nodes, block scanning, BIP-44 derivation, EIP-681 URIs.

Node quirks are translated here and nowhere else; the rest of the gateway sees the value
objects of `chaingate.domain.chain`.
"""

from chaingate.adapters.chains.evm.client import ChainMismatch, EvmChainClient
from chaingate.adapters.chains.evm.derivation import EvmAddressDeriver, account_xpub_from_mnemonic
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.rpc import JsonRpcClient, RpcError
from chaingate.adapters.chains.evm.uri import payment_uri

__all__ = [
    "BadNodeAnswer",
    "ChainMismatch",
    "EvmAddressDeriver",
    "EvmChainClient",
    "JsonRpcClient",
    "RpcError",
    "account_xpub_from_mnemonic",
    "payment_uri",
]
