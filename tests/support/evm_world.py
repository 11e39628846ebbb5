"""A gateway whose EVM node is a misbehaving JSON-RPC proxy (tests/support/rpc_proxy.py) in
front of a real anvil: `world_of(...)` builds it, `World` drives it (payments, tracker steps,
and assertions on what the database holds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from chaingate.adapters.chains.evm.client import EvmChainClient
from chaingate.adapters.chains.evm.wallet_ops import encode_call
from chaingate.config import TokenConfig
from chaingate.domain.chain import NodeUnavailable
from chaingate.domain.models import ChainCursor
from chaingate.services.tracking import SyncOutcome, sync_once
from tests.support.anvil import AnvilNode
from tests.support.clock import SteerableClock
from tests.support.gateway import Gateway, MerchantHandle, running_gateway
from tests.support.rpc_proxy import RpcProxy, running_proxy

ETH = 10**18
USDT = 10**6
NETWORK = "anvil"


@dataclass
class World:
    node: AnvilNode
    proxy: RpcProxy
    gateway: Gateway
    shop: MerchantHandle
    usdt: TokenConfig

    @property
    def payer(self) -> str:
        return self.node.accounts[1].address

    async def pay_eth(self, to: str, wei: int = ETH, *, mined: bool = True) -> str:
        return await self.send({"to": to, "value": hex(wei)}, mined=mined)

    async def pay_token(
        self, to: str, units: int = 5 * USDT, *, contract: str = "", mined: bool = True
    ) -> str:
        data = encode_call("transfer(address,uint256)", ["address", "uint256"], [to, units])
        return await self.call_token(contract or self.usdt.contract, data, mined=mined)

    async def call_token(self, contract: str, data: bytes, *, mined: bool = True) -> str:
        return await self.send({"to": contract, "data": "0x" + data.hex()}, mined=mined)

    async def send(self, tx: dict[str, str], *, mined: bool) -> str:
        """Send from the payer; with `mined`, return once the block holding it exists.

        anvil answers eth_sendTransaction before its automine block is in place (under load
        the tip can still be the old one), and a test must not race the node it drives.
        """
        txid: str = await self.node.rpc("eth_sendTransaction", {"from": self.payer, **tx})
        for _ in range(400):
            if not mined or await self.node.rpc("eth_getTransactionReceipt", txid) is not None:
                return txid
            await asyncio.sleep(0.025)
        raise AssertionError(f"{txid} was not mined")

    async def in_one_block(self, *payments: Any) -> int:
        """Await the payment coroutines (sent with mined=False) with automine off, then mine
        them into one block."""
        await self.node.rpc("evm_setAutomine", False)
        try:
            for payment in payments:
                await payment
            await self.node.mine(1)
        finally:
            await self.node.rpc("evm_setAutomine", True)
        return await self.node.tip()

    async def eth_invoice(self) -> dict[str, Any]:
        return await self.shop.invoice(amount="1", currency="ETH", network=NETWORK)

    async def usdt_invoice(self) -> dict[str, Any]:
        return await self.shop.invoice(amount="5", currency="USDT", network=NETWORK)

    async def step(self) -> SyncOutcome:
        return await sync_once(self.gateway.tracker(NETWORK))

    def proxy_in_favour(self) -> bool:
        """Whether the tracker's client asks the proxy first (it is not resting after a failure)."""
        chain = self.gateway.tracker(NETWORK).chain
        assert isinstance(chain, EvmChainClient)
        first = chain.rpc.endpoints[0]
        return first.url == self.proxy.url and chain.rpc.is_healthy(first)

    async def step_or_fail(self) -> SyncOutcome | None:
        """One tracker step; None when it raised NodeUnavailable (which changes nothing)."""
        try:
            return await self.step()
        except NodeUnavailable:
            return None

    async def sync(self) -> SyncOutcome:
        return await self.gateway.sync(NETWORK)

    async def cursor(self) -> ChainCursor:
        async with self.gateway.container.db.uow() as uow:
            cursor = await uow.chain.cursor(NETWORK)
        assert cursor is not None
        return cursor

    async def highest_stored_block(self) -> int:
        async with self.gateway.container.db.uow() as uow:
            stored = await uow.chain.blocks_from(NETWORK, 0)
        return stored[0].number

    async def assert_only_real_blocks_stored(self) -> None:
        """The durable chain view - cursor, stored blocks, payments - names only blocks the
        real node has (asked directly, not through the proxy)."""
        async with self.gateway.container.db.uow() as uow:
            cursor = await uow.chain.cursor(NETWORK)
            stored = await uow.chain.blocks_from(NETWORK, 0)
        assert cursor is not None
        named = {(b.number, b.hash) for b in stored} | {(cursor.height, cursor.hash)}
        for invoice in (await self.shop.get("/v1/invoices", limit=100)).json()["data"]:
            for payment in (await self.shop.fetch(invoice["id"]))["payments"]:
                named.add((payment["block_number"], payment["block_hash"]))
        for number, block_hash in named:
            real = await self.node.rpc("eth_getBlockByNumber", hex(number), False)
            assert block_hash == real["hash"], f"block {number} stored with a forged hash"

    async def payments(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.shop.fetch(invoice["id"]))["payments"]
        return found

    async def event_types(self, invoice: dict[str, Any]) -> list[str]:
        return [e["type"] for e in await self.shop.events(invoice["id"])]

    async def assert_credited_once(self, invoice: dict[str, Any], txid: str) -> None:
        seen = await self.shop.fetch(invoice["id"])
        assert [(p["txid"], p["status"] != "orphaned") for p in seen["payments"]] == [
            (txid, True)
        ], seen
        assert seen["amount_paid"] == seen["amount"], seen
        types = await self.event_types(invoice)
        assert types.count("invoice.payment_received") == 1, types
        assert "invoice.payment_removed" not in types, types

    async def assert_step_fails_untouched(self, match: str | None = None) -> None:
        """One tracker step raises NodeUnavailable (whose message matches `match`) and
        changes nothing durable."""
        before = await self.cursor()
        with pytest.raises(NodeUnavailable, match=match):
            await self.step()
        after = await self.cursor()
        assert (after.height, after.hash) == (before.height, before.hash)


@asynccontextmanager
async def world_of(
    node: AnvilNode, database_url: str, *, healthy_backup: bool, **network_settings: Any
) -> AsyncIterator[World]:
    """A gateway whose only node (or first node, before a healthy one) is the proxy."""
    usdt = await node.deploy_token("USDT", 6, holder=node.accounts[1].address)
    block = await node.rpc("eth_getBlockByNumber", "latest", False)
    chain_now = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    clock = SteerableClock(max(chain_now, datetime.now(UTC)))
    with running_proxy(node.rpc_url) as proxy:
        settings: dict[str, Any] = {
            "rpc_urls": [proxy.url, *([node.rpc_url] if healthy_backup else [])],
            "ws_url": None,  # every read goes through the proxy
            "required_confirmations": 2,
            "start_block": await node.tip(),
            "scan_batch_blocks": 7,
        }
        network = node.network([usdt], **(settings | network_settings))
        async with running_gateway(database_url, [network], clock=clock) as gateway:
            world = World(node, proxy, gateway, await gateway.merchant(), usdt)
            await world.sync()
            yield world
