"""An independent payer: anvil's unlocked account sends ETH or a token with eth_sendTransaction.

Nothing of the gateway signs or builds these payments; each one comes back with where the
chain put it (txid and the position the gateway must key it by), read from the receipt.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chaingate.adapters.chains.evm.wallet_ops import encode_call
from chaingate.config import TokenConfig
from tests.support.anvil import AnvilNode

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@dataclass(frozen=True, slots=True)
class SentTransfer:
    txid: str
    position: str  # "native" or the token log's index, as the gateway keys payments
    to: str
    asset: str
    amount: int  # base units
    block_number: int


class Payer:
    def __init__(self, node: AnvilNode, account: str, tokens: list[TokenConfig]) -> None:
        self.node = node
        self.account = account
        self.tokens = {t.symbol: t for t in tokens}
        self.sent: list[SentTransfer] = []

    async def send(self, to: str, asset: str, amount: int) -> SentTransfer:
        """Pay `amount` base units of `asset` ("ETH" or a token symbol) to `to`; mined at once."""
        if asset == "ETH":
            tx = {"from": self.account, "to": to, "value": hex(amount)}
        else:
            data = encode_call("transfer(address,uint256)", ["address", "uint256"], [to, amount])
            contract = self.tokens[asset].contract
            tx = {"from": self.account, "to": contract, "data": "0x" + data.hex()}
        txid: str = await self.node.rpc("eth_sendTransaction", tx)
        receipt = await self._receipt(txid)
        assert receipt["status"] == "0x1", receipt
        position = "native"
        if asset != "ETH":
            contract = self.tokens[asset].contract
            [log] = [
                entry
                for entry in receipt["logs"]
                if entry["address"].lower() == contract and entry["topics"][0] == TRANSFER_TOPIC
            ]
            position = str(int(log["logIndex"], 16))
        sent = SentTransfer(
            txid.lower(), position, to.lower(), asset, amount, int(receipt["blockNumber"], 16)
        )
        self.sent.append(sent)
        return sent

    async def _receipt(self, txid: str) -> dict[str, Any]:
        # anvil's automine may answer eth_sendTransaction a moment before the block exists.
        deadline = time.monotonic() + 10
        while True:
            receipt: dict[str, Any] | None = await self.node.rpc("eth_getTransactionReceipt", txid)
            if receipt is not None:
                return receipt
            assert time.monotonic() < deadline, f"{txid} not mined after 10 s"
            await asyncio.sleep(0.005)


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` as `parts` positive amounts (fewer if it is too small to split)."""
    parts = max(1, min(parts, total))
    cuts = sorted(rng.sample(range(1, total), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(edges)]


def decimal_string(units: int, decimals: int) -> str:
    """Base units as the API's decimal string ("0.0123"), computed without the gateway's code."""
    text = f"{Decimal(units).scaleb(-decimals):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
