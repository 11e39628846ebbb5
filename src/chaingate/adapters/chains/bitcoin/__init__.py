"""The Bitcoin family (Bitcoin, Litecoin and other Core forks): Core JSON-RPC nodes, block and
mempool scanning, BIP-84/49/86 watch-only derivation, BIP-21 URIs.

Node quirks are translated here and nowhere else; the rest of the gateway sees the value
objects of `chaingate.domain.chain`.
"""
