"""A gateway on a real litecoind regtest, stepped by hand, for the Bitcoin-family tests.

`World` bundles the node, the gateway (real database, real app over ASGI), the merchant and the
gateway's clock. `sync` runs the block tracker to the node's tip; `look` does that and then one
mempool pass, as the worker does at the tip. The payer is litecoind's own `payer` wallet:
nothing of ours builds the payments the tracker must find.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import params_for
from chaingate.config import NetworkConfig
from chaingate.ports import ChainClient
from chaingate.services.mempool import MempoolOutcome, sync_mempool
from chaingate.services.tracking import Tracker
from tests.support.clock import SteerableClock
from tests.support.gateway import MERCHANT_MNEMONICS, Gateway, MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode

NETWORK = "ltc-regtest"
LTC = 10**8


@dataclass
class World:
    node: LitecoindNode
    gateway: Gateway
    shop: MerchantHandle
    clock: SteerableClock
    network: NetworkConfig

    @property
    def tracker(self) -> Tracker:
        return self.gateway.tracker(NETWORK)

    async def sync(self) -> None:
        await self.gateway.sync(NETWORK)

    async def look(self) -> MempoolOutcome:
        """Blocks to the tip, then one mempool pass (as the worker does at the tip)."""
        await self.sync()
        return await sync_mempool(self.tracker)

    async def invoice(self, amount: str, **fields: Any) -> dict[str, Any]:
        return await self.shop.invoice(amount=amount, currency="LTC", network=NETWORK, **fields)

    async def fetch(self, invoice: dict[str, Any]) -> dict[str, Any]:
        return await self.shop.fetch(invoice["id"])

    async def event_types(self, invoice: dict[str, Any]) -> list[str]:
        return [e["type"] for e in await self.shop.events(invoice["id"])]

    async def mine(self, blocks: int = 1) -> None:
        await self.node.mine(blocks)

    async def pay(self, invoice: dict[str, Any], satoshis: int) -> str:
        txid = await self.node.pay(invoice["address"], satoshis)
        await self.in_mempool(txid)
        return txid

    async def in_mempool(self, txid: str) -> None:
        assert txid in await self.node.rpc("getrawmempool")


async def make_world(
    node: LitecoindNode,
    database_url: str,
    *,
    chain: ChainClient | None = None,
    **network_fields: Any,
) -> AsyncIterator[World]:
    """A World whose tracker starts at the node's tip; `chain`: the tracker's chain client
    (default: the one the gateway builds from the network's settings)."""
    network = node.network(name=NETWORK, start_block=await node.tip(), **network_fields)
    clock = SteerableClock(datetime.now(UTC))
    async with running_gateway(database_url, [network], clock=clock) as gateway:
        if chain is not None:
            container = gateway.container
            gateway.trackers[NETWORK] = Tracker(
                db=container.db,
                chain=chain,
                network=network,
                family=container.family(network),
                clock=clock,
                checkout_base=container.settings.checkout_base_url,
            )
        shop = await gateway.merchant(with_wallets=False)
        vpub = account_key_from_mnemonic(MERCHANT_MNEMONICS[0], params_for(network))
        answer = await shop.post("/v1/wallets", {"network": NETWORK, "xpub": vpub})
        assert answer.status_code == 201, answer.text
        world = World(node, gateway, shop, clock, network)
        await world.sync()
        yield world


async def double_spend(node: LitecoindNode, txid: str) -> str:
    """The payer signs a transaction spending `txid`'s inputs to itself with a higher fee (a
    BIP-125 replacement that pays someone else); returns its txid once it replaced `txid`."""
    spent = (await node.rpc("getrawtransaction", txid, True))["vin"]
    inputs = [{"txid": i["txid"], "vout": i["vout"]} for i in spent]
    elsewhere = await node.new_address("payer")
    draft = await node.rpc("createrawtransaction", inputs, {elsewhere: "0.5"})
    funded = await node.rpc("fundrawtransaction", draft, {"feeRate": "0.001"}, wallet="payer")
    signed = await node.rpc("signrawtransactionwithwallet", funded["hex"], wallet="payer")
    conflict: str = await node.rpc("sendrawtransaction", signed["hex"])
    mempool = await node.rpc("getrawmempool")
    assert conflict in mempool and txid not in mempool
    return conflict
