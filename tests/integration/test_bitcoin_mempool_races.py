"""The mempool races of test_mempool_tracking.py, again on a real litecoind regtest (SQLite and
PostgreSQL): two trackers on one mempool, a sighting mined after its watch window, the
two-snapshot eviction rule (with a real backup node that never received the payment), a
reorged-out payment coming back through the mempool, and the gap limit ignoring an orphaned
payment.

The scripted chain there orders each race exactly and stays as the fast check; here the node
decides what its mempool and its blocks hold. The payer is litecoind's own wallet; the chain is
moved with `invalidateblock`, `prioritisetransaction` (a miner leaving a transaction out) and
`setmocktime` (the node's clock), as test_bitcoin_payment_loop.py does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chaingate.adapters.chains.bitcoin.client import BitcoinChainClient
from chaingate.adapters.chains.bitcoin.rpc import BitcoinRpcClient, RpcAuth
from chaingate.services.mempool import sync_mempool
from chaingate.services.tracking import Tracker
from tests.support.bitcoin_world import LTC, NETWORK, World, double_spend, make_world
from tests.support.litecoind import LitecoindNode
from tests.support.litecoind_proxy import LyingProxy, unchanged


@pytest.fixture
async def world(litecoind: LitecoindNode, clean_database_url: str) -> AsyncIterator[World]:
    await litecoind.mine(1)  # the shared node: leave no earlier test's transaction waiting
    async for world in make_world(litecoind, clean_database_url):
        yield world


@pytest.fixture
async def isolated(
    litecoind_isolated: LitecoindNode, clean_database_url: str
) -> AsyncIterator[World]:
    async for world in make_world(litecoind_isolated, clean_database_url):
        yield world


async def test_two_trackers_looking_at_once_credit_once(world: World) -> None:
    invoice = await world.invoice("0.5")
    txid = await world.pay(invoice, LTC // 2)
    await world.sync()
    # A second tracker process: its own chain client (its own memory of the mempool), the
    # same network and database. Both see the transaction as new in the same moment.
    twin = Tracker(
        db=world.gateway.container.db,
        chain=BitcoinChainClient(world.network),
        network=world.network,
        family=world.gateway.container.family(world.network),
        clock=world.clock,
    )
    try:
        outcomes = await asyncio.gather(sync_mempool(world.tracker), sync_mempool(twin))
    finally:
        await twin.chain.close()
    assert sum(o.received for o in outcomes) == 1, outcomes
    state = await world.fetch(invoice)
    assert [p["txid"] for p in state["payments"]] == [txid]
    assert (state["status"], state["amount_paid"]) == ("processing", "0.5")
    assert await world.event_types(invoice) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
    ]


async def test_sighting_mined_after_its_watch_window_closed_is_not_orphaned(
    isolated: World,
) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=2)
    txid = await world.pay(invoice, LTC // 2)
    assert (await world.look()).received == 1
    # Stuck in the mempool for three days: miners leave it out while the node's clock and the
    # gateway's move past the invoice's watch window (expiry plus one day).
    async with world.gateway.container.db.uow() as uow:
        stored = await uow.invoices.get(invoice["id"])
    assert stored is not None
    later = world.clock.advance(3 * 86_400)
    assert later > stored.watch_until
    await node.rpc("setmocktime", int(later.timestamp()))
    await node.rpc("prioritisetransaction", txid, 0, -LTC)
    await node.mine(1)
    outcome = await world.look()
    assert (outcome.received, outcome.evicted) == (0, 0)
    assert txid in await node.rpc("getrawmempool")
    waiting = await world.fetch(invoice)
    assert [(p["status"], p["block_number"]) for p in waiting["payments"]] == [("pending", None)]

    await node.rpc("prioritisetransaction", txid, 0, LTC)
    [mined_in, _] = await node.mine(2)  # mined at last, in blocks stamped after the window
    header = await node.rpc("getblockheader", mined_in)
    assert header["time"] > stored.watch_until.timestamp()
    await world.look()
    state = await world.fetch(invoice)
    [payment] = state["payments"]
    assert (payment["txid"], payment["status"]) == (txid, "confirmed")
    assert (payment["block_number"], payment["confirmations"]) == (header["height"], 2)
    assert (state["status"], state["amount_paid"]) == ("settled", "0.5")
    assert "invoice.payment_removed" not in await world.event_types(invoice)


@pytest.fixture
def proxies(
    litecoind_isolated: LitecoindNode, litecoind_backup: LitecoindNode
) -> Iterator[tuple[LyingProxy, LyingProxy]]:
    """The primary node and the backup, each behind a proxy that signs in for it."""
    made = [
        LyingProxy(n.rpc_url, (n.rpc_user, n.rpc_password), unchanged)
        for n in (litecoind_isolated, litecoind_backup)
    ]
    yield made[0], made[1]
    for proxy in made:
        proxy.close()


@pytest.fixture
async def failing_over(
    litecoind_isolated: LitecoindNode,
    litecoind_backup: LitecoindNode,
    proxies: tuple[LyingProxy, LyingProxy],
    clean_database_url: str,
) -> AsyncIterator[World]:
    """A gateway whose network lists the primary first and the backup second; a node that
    fails is asked again on the next call (no back-off), as the first of two healthy nodes."""
    primary, backup = proxies
    assert await litecoind_isolated.rpc("getbestblockhash") == await litecoind_backup.rpc(
        "getbestblockhash"
    )
    urls = [primary.url, backup.url]
    network = litecoind_isolated.network(name=NETWORK, rpc_urls=urls)
    rpc = BitcoinRpcClient(urls, RpcAuth("proxy", "proxy"), timeout=30, backoff_seconds=0.0)
    chain = BitcoinChainClient(network, rpc)
    async for world in make_world(
        litecoind_isolated, clean_database_url, chain=chain, rpc_urls=urls
    ):
        yield world


def still_loading(method: str, result: Any) -> Any:
    """The node's own answer, saying what a node that restarted says until mempool.dat is read."""
    return {**result, "loaded": False} if method == "getmempoolinfo" else result


async def test_one_snapshot_without_a_sighting_evicts_nothing_two_in_a_row_do(
    failing_over: World,
    litecoind_backup: LitecoindNode,
    proxies: tuple[LyingProxy, LyingProxy],
) -> None:
    world, primary, backup = failing_over, proxies[0], proxies[1]
    invoice = await world.invoice("0.5")
    txid = await world.pay(invoice, LTC // 2)  # sent to the primary only
    assert txid not in await litecoind_backup.rpc("getrawmempool")
    assert (await world.look()).received == 1

    async def look_through_the_backup() -> None:
        asked = backup.calls["getrawmempool"]
        primary.down = True
        try:
            outcome = await world.look()
        finally:
            primary.down = False
        assert backup.calls["getrawmempool"] == asked + 1  # the snapshot was the backup's
        assert (outcome.applied, outcome.evicted) == (True, 0)

    async def payments() -> list[str]:
        return [p["status"] for p in (await world.fetch(invoice))["payments"]]

    await look_through_the_backup()  # one snapshot without the payment proves nothing
    assert await payments() == ["pending"]
    assert (await world.look()).evicted == 0  # the primary has it again: the run is broken
    await look_through_the_backup()  # missing once more, but only once in a row
    assert await payments() == ["pending"]
    assert (await world.fetch(invoice))["status"] == "processing"

    primary.rewrite = still_loading  # a node still loading its mempool proves nothing either
    for _ in range(3):
        outcome = await world.look()
        assert (outcome.applied, outcome.evicted) == (True, 0)
    assert await payments() == ["pending"]
    primary.rewrite = unchanged

    # The payer double-spends it on the primary: the second loaded snapshot in a row without
    # it (after the backup's) is the proof.
    await double_spend(world.node, txid)
    assert (await world.look()).evicted == 1
    state = await world.fetch(invoice)
    assert (state["status"], [p["status"] for p in state["payments"]]) == ("new", ["orphaned"])
    assert (await world.event_types(invoice))[-2:] == [
        "invoice.payment_removed",
        "invoice.reopened",
    ]


async def test_reorged_out_payment_comes_back_through_the_mempool(isolated: World) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=2)
    txid = await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    [first] = (await world.fetch(invoice))["payments"]
    assert (first["confirmations"], first["status"]) == (1, "pending")

    # The paying block leaves the chain for a longer branch without the payment; the node puts
    # the transaction back in its mempool.
    await node.rpc("invalidateblock", paying_block)
    await node.rpc("prioritisetransaction", txid, 0, -LTC)
    await node.mine(2)
    await node.rpc("prioritisetransaction", txid, 0, LTC)
    assert txid in await node.rpc("getrawmempool")
    await world.sync()  # the block scan alone: the payment left the chain
    gone = await world.fetch(invoice)
    assert (gone["status"], gone["payments"][0]["status"]) == ("new", "orphaned")

    assert (await sync_mempool(world.tracker)).received == 1  # waiting in the mempool again
    back = await world.fetch(invoice)
    [again] = back["payments"]
    assert again["id"] == first["id"]  # the same payment row, never a second one
    assert (again["status"], again["block_number"]) == ("pending", None)
    assert back["status"] == "processing"

    [mined_in, _] = await node.mine(2)  # mined in the new branch this time
    await world.look()
    done = await world.fetch(invoice)
    [payment] = done["payments"]
    assert payment["id"] == first["id"]
    assert (payment["status"], payment["confirmations"]) == ("confirmed", 2)
    assert payment["block_hash"] == mined_in
    assert (done["status"], done["amount_paid"]) == ("settled", "0.5")
    assert await world.event_types(invoice) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.payment_removed",
        "invoice.reopened",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
    ]


async def test_an_orphaned_payment_does_not_use_its_address_for_the_gap_limit(
    world: World,
) -> None:
    invoice = await world.invoice("0.5")
    async with world.gateway.container.db.uow() as uow:
        stored = await uow.invoices.get(invoice["id"])
        assert stored is not None
        assert await uow.wallets.highest_paid_index(stored.wallet_id) is None
    txid = await world.pay(invoice, LTC // 2)
    assert (await world.look()).received == 1
    async with world.gateway.container.db.uow() as uow:
        assert await uow.wallets.highest_paid_index(stored.wallet_id) == stored.derivation_index
    await double_spend(world.node, txid)  # the address received nothing after all
    assert [(await world.look()).evicted for _ in range(2)] == [0, 1]
    assert [p["status"] for p in (await world.fetch(invoice))["payments"]] == ["orphaned"]
    async with world.gateway.container.db.uow() as uow:
        assert await uow.wallets.highest_paid_index(stored.wallet_id) is None
