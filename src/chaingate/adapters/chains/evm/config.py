"""An EVM network's settings: the chain-neutral ones plus chain id, WebSocket, block hashing,
and what a payment must pass before it credits (payment proofs, internal transfers)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from chaingate.config import NetworkConfig, TokenConfig

_CONTRACT = re.compile(r"0x[0-9a-fA-F]{40}")


class EvmNetworkConfig(NetworkConfig):
    kind: Literal["evm"] = "evm"
    chain_id: int = Field(ge=1)  # EIP-155: nodes are checked against it before any scan
    ws_url: str | None = None  # newHeads wakes the tracker; it polls without one
    native_symbol: str = "ETH"
    native_decimals: int = Field(default=18, ge=0, le=36)
    required_confirmations: int = Field(default=12, ge=1, le=1000)
    # Refuse blocks whose hash is not keccak(rlp(header)). Turn off only for chains that hash
    # blocks another way (zkSync Era, Avalanche C-Chain, Celo): a node's hash is then trusted.
    verify_block_hashes: bool = True
    # What a payment found on one node must pass before it credits. "roots": its block's
    # transactions and receipts are rebuilt into the header's transactionsRoot/receiptsRoot
    # (a block holding a type we cannot encode, e.g. L2 deposits, needs a second node instead);
    # "two_nodes": a second node of rpc_urls must also say the same (needed where headers are
    # not verified). One node is never enough where a second is needed: nothing credits.
    payment_proof: Literal["roots", "two_nodes"] = "roots"
    # ETH paid by a contract's internal call (Safe, smart wallets, batch payouts), read from
    # the node's tracer: geth's callTracer (debug_traceBlockByHash) or parity-style
    # trace_block. "off" for nodes without a tracer: such payments are then not seen.
    internal_transfers: Literal["call_tracer", "parity", "off"] = "call_tracer"

    @field_validator("tokens")
    @classmethod
    def _erc20_contracts(cls, tokens: list[TokenConfig]) -> list[TokenConfig]:
        # Lower case: logs and receipts are matched against it as the node spells them.
        checked = []
        for token in tokens:
            if _CONTRACT.fullmatch(token.contract) is None:
                raise ValueError(f"token {token.symbol}: contract must be a 0x address")
            checked.append(token.model_copy(update={"contract": token.contract.lower()}))
        return checked

    @model_validator(mode="after")
    def _roots_need_verified_headers(self) -> EvmNetworkConfig:
        if self.payment_proof == "roots" and not self.verify_block_hashes:
            raise ValueError(
                f"{self.name}: payment_proof 'roots' needs verified headers; with "
                "verify_block_hashes = false set payment_proof = 'two_nodes'"
            )
        return self
