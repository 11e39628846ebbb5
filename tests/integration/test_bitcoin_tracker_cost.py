"""10,000 watched addresses cost the tracker exactly what 10 cost, per block, on litecoind.

Two networks in one database follow the SAME regtest blocks from the same height: one watches
the 10 addresses the blocks pay, the other those 10 plus 9,990 more. The cost is counted, not
timed: JSON-RPC calls sent to the node (batch items one by one) and SQL statements executed.
Matching is a lookup of each block's candidate addresses in an index, so both counts must be
identical — any per-watched-address work would show up as a difference.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import event, func, select

from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import params_for
from chaingate.adapters.db.tables import invoices, payments
from chaingate.config import NetworkConfig
from chaingate.domain.ids import new_id
from chaingate.domain.models import Wallet
from chaingate.services.mempool import sync_mempool
from chaingate.services.tracking import Tracker, sync_once
from tests.support.gateway import MERCHANT_MNEMONICS, Gateway, MerchantHandle, running_gateway
from tests.support.litecoind import LitecoindNode

PAID = 10
MANY = 10_000
BLOCKS = 5


class Meter:
    """Counts what one tracker asks of the node and of the database."""

    def __init__(self) -> None:
        self.rpc: Counter[str] = Counter()
        self.sql = 0

    def watch_node(self, client: BitcoinChainClient) -> None:
        for endpoint in client.rpc.endpoints:
            exchange = endpoint._exchange  # test instrumentation: count what goes on the wire

            async def counted(body: bytes, exchange: Any = exchange) -> tuple[int, bytes]:
                sent = json.loads(body)
                for item in sent if isinstance(sent, list) else [sent]:
                    self.rpc[item["method"]] += 1
                result: tuple[int, bytes] = await exchange(body)
                return result

            endpoint._exchange = counted  # type: ignore[method-assign]

    def on_statement(self, *_: Any) -> None:
        self.sql += 1


async def _add_invoices(
    gateway: Gateway, shop: MerchantHandle, network: NetworkConfig, addresses: list[str]
) -> None:
    """A wallet and one open invoice per address, written straight to the tables: setup."""
    now = gateway.container.clock.now()
    key = account_key_from_mnemonic(MERCHANT_MNEMONICS[0], params_for(network))
    wallet = Wallet(new_id("wal"), shop.merchant_id, network.name, key, len(addresses), now)
    async with gateway.container.db.uow() as uow:
        await uow.wallets.add(wallet)
        await uow.commit()
    rows = [
        {
            "id": new_id("inv"),
            "merchant_id": shop.merchant_id,
            "network": network.name,
            "asset": "LTC",
            "amount_due": 10**8,
            "amount_paid": 0,
            "status": "new",
            "additional_status": "none",
            "address": address,
            "wallet_id": wallet.id,
            "derivation_index": index,
            "order_id": None,
            "metadata": "{}",
            "required_confirmations": 2,
            "tolerance_bps": 0,
            "expires_at": now + timedelta(days=1),
            "watch_until": now + timedelta(days=2),
            "created_at": now - timedelta(hours=1),
            "updated_at": now,
        }
        for index, address in enumerate(addresses)
    ]
    async with gateway.container.db.engine.begin() as conn:
        for first in range(0, len(rows), 2_000):
            await conn.execute(invoices.insert(), rows[first : first + 2_000])


async def _follow(gateway: Gateway, network: NetworkConfig, tip: int) -> Meter:
    """Place the cursor (not counted), then sync to `tip` and look at the mempool, counted."""
    client = BitcoinChainClient(network)
    container = gateway.container
    tracker = Tracker(container.db, client, network, container.family(network), container.clock)
    meter = Meter()
    engine = container.db.engine.sync_engine
    try:
        await sync_once(tracker)
        meter.watch_node(client)
        event.listen(engine, "before_cursor_execute", meter.on_statement)
        try:
            while not (outcome := await sync_once(tracker)).at_tip:
                pass
            assert outcome.height == tip
            await sync_mempool(tracker)
        finally:
            event.remove(engine, "before_cursor_execute", meter.on_statement)
    finally:
        await client.close()
    return meter


async def test_ten_thousand_watched_addresses_cost_what_ten_cost(
    litecoind: LitecoindNode, clean_database_url: str
) -> None:
    node = litecoind
    await node.mine(1)  # start from an empty mempool
    start = await node.tip()
    few, many = (
        node.network(name=name, start_block=start, scan_batch_blocks=100)
        for name in ("ltc-few", "ltc-many")
    )
    paid = [await node.new_address("miner") for _ in range(PAID)]
    for number in range(BLOCKS):
        for address in paid[number::BLOCKS]:
            await node.pay(address, 1_000_000 + number)
        noise = {await node.new_address("miner"): "0.001" for _ in range(20)}
        await node.rpc("sendmany", "", noise, wallet="payer")  # outputs nobody watches
        await node.mine(1)
    tip = await node.tip()
    assert tip == start + BLOCKS

    async with running_gateway(clean_database_url, [few, many]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        filler = [f"rltc1qwatched{i:06d}" for i in range(MANY - PAID)]
        await _add_invoices(gateway, shop, few, paid)
        await _add_invoices(gateway, shop, many, paid + filler)

        cost_few = await _follow(gateway, few, tip)
        cost_many = await _follow(gateway, many, tip)

        async with gateway.container.db.engine.connect() as conn:
            credited: dict[str, int] = dict(
                (
                    await conn.execute(
                        select(payments.c.network, func.count()).group_by(payments.c.network)
                    )
                ).all()
            )
        assert credited == {few.name: PAID, many.name: PAID}
    assert sum(cost_few.rpc.values()) > 0 and cost_few.sql > 0
    assert cost_many.rpc == cost_few.rpc
    assert cost_many.sql == cost_few.sql
    # Per block, for the record: the same numbers, whatever the watched set.
    per_block = sum(cost_few.rpc.values()) / BLOCKS
    assert per_block == sum(cost_many.rpc.values()) / BLOCKS
