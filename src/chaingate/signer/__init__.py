"""The isolated signer: the only code in ChainGate that loads private key material.

It runs as its own process (`chaingate signer`), keeps its own state (keystore, policy, spend
counters, nonce guard, audit log) in its own directory, reads nothing of the gateway's
database, and answers signing requests over an authenticated local socket. Gateway processes
never import this package (an import-linter contract checks it); they talk to it through
`chaingate.adapters.signer`, which implements the `Signer` port.
"""
