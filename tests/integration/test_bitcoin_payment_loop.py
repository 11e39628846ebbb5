"""The payment loop on a real litecoind regtest and a real database (SQLite and PostgreSQL):
invoice -> fresh address -> independent payer -> mempool sighting -> block -> confirmations.

The payer is litecoind's own `payer` wallet (`sendtoaddress`, `bumpfee`, raw conflicting
transactions signed by the node's wallet): nothing of ours builds the payments the tracker must
find. The tracker is stepped by hand (`sync`: blocks to the tip; `look`: one mempool pass) so each
assertion sees exactly what the node holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chaingate.services.expiry import expire_due
from chaingate.services.tracking import Tracker, sync_once
from tests.support.bitcoin_world import LTC, NETWORK, World, double_spend, make_world
from tests.support.litecoind import LitecoindNode


@pytest.fixture
async def world(litecoind: LitecoindNode, clean_database_url: str) -> AsyncIterator[World]:
    # The shared node: earlier tests may have left transactions in its mempool.
    await litecoind.mine(1)
    async for world in make_world(litecoind, clean_database_url):
        yield world


@pytest.fixture
async def isolated(
    litecoind_isolated: LitecoindNode, clean_database_url: str
) -> AsyncIterator[World]:
    async for world in make_world(litecoind_isolated, clean_database_url):
        yield world


async def test_exact_payment_seen_in_mempool_then_confirmed(world: World) -> None:
    invoice = await world.invoice("0.5", required_confirmations=2)
    assert invoice["payment_uri"].startswith(f"litecoin:{invoice['address']}?amount=0.5")
    txid = await world.pay(invoice, LTC // 2)

    assert (await world.look()).received == 1
    seen = await world.fetch(invoice)
    assert (seen["status"], seen["amount_paid"], seen["amount_due"]) == ("processing", "0.5", "0")
    [payment] = seen["payments"]
    assert payment["txid"] == txid and payment["log_index"] is None
    assert (payment["block_number"], payment["confirmations"], payment["status"]) == (
        None,
        0,
        "pending",
    )
    raw = await world.node.rpc("getrawtransaction", txid, True)
    paid_vout = next(
        o["n"] for o in raw["vout"] if invoice["address"] in o["scriptPubKey"].get("addresses", [])
    )
    assert payment["output"] == str(paid_vout)

    await world.mine(1)
    assert (await world.look()).received == 0
    mined = await world.fetch(invoice)
    [same] = mined["payments"]
    assert same["id"] == payment["id"]
    assert same["block_number"] == await world.node.tip() and same["confirmations"] == 1
    assert mined["status"] == "processing"
    await world.mine(1)
    await world.look()
    settled = await world.fetch(invoice)
    assert (settled["status"], settled["additional_status"]) == ("settled", "none")
    assert settled["payments"][0]["status"] == "confirmed"
    assert await world.event_types(invoice) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
    ]


async def test_two_partial_payments_add_up(world: World) -> None:
    invoice = await world.invoice("0.5")
    await world.pay(invoice, 30_000_000)
    await world.look()
    partial = await world.fetch(invoice)
    assert (partial["status"], partial["additional_status"]) == ("new", "underpaid")
    assert (partial["amount_paid"], partial["amount_due"]) == ("0.3", "0.2")
    assert "amount=0.2" in partial["payment_uri"]  # the QR asks for what is left

    await world.mine(1)
    await world.pay(invoice, 20_000_000)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "processing"
    await world.mine(1)
    await world.look()
    done = await world.fetch(invoice)
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "settled",
        "none",
        "0.5",
    )
    assert sorted(p["amount"] for p in done["payments"]) == ["0.2", "0.3"]
    assert (await world.event_types(invoice)).count("invoice.payment_received") == 2


async def test_overpayment_settles_as_overpaid(world: World) -> None:
    invoice = await world.invoice("0.5")
    await world.pay(invoice, 60_000_000)
    await world.mine(1)
    await world.look()  # mined before the tracker looked at the mempool: found in the block
    done = await world.fetch(invoice)
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "settled",
        "overpaid",
        "0.6",
    )
    assert done["payments"][0]["block_number"] == await world.node.tip()


async def test_rbf_bump_replaces_the_paying_transaction(world: World) -> None:
    invoice = await world.invoice("0.5")
    original = await world.pay(invoice, LTC // 2)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "processing"

    bumped = (await world.node.rpc("bumpfee", original, wallet="payer"))["txid"]
    mempool = await world.node.rpc("getrawmempool")
    assert bumped in mempool and original not in mempool
    outcome = await world.look()
    assert (outcome.received, outcome.evicted) == (1, 0)  # one snapshot proves no eviction
    outcome = await world.look()
    assert (outcome.received, outcome.evicted) == (0, 1)
    state = await world.fetch(invoice)
    assert (state["status"], state["amount_paid"]) == ("processing", "0.5")
    assert {p["txid"]: p["status"] for p in state["payments"]} == {
        original: "orphaned",
        bumped: "pending",
    }

    await world.mine(1)
    await world.look()
    done = await world.fetch(invoice)
    assert (done["status"], done["amount_paid"]) == ("settled", "0.5")
    events = await world.event_types(invoice)
    assert events.count("invoice.payment_received") == 2
    assert events.count("invoice.payment_removed") == 1
    assert "invoice.reopened" not in events


async def test_fee_bump_mined_before_the_mempool_pass_settles_once(world: World) -> None:
    invoice = await world.invoice("0.5")
    original = await world.pay(invoice, LTC // 2)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "processing"

    bumped = (await world.node.rpc("bumpfee", original, wallet="payer"))["txid"]
    await world.mine(1)  # the replacement is mined before the tracker looks at the mempool
    await world.sync()
    settled = [e for e in await world.shop.events(invoice["id"]) if e["type"] == "invoice.settled"]
    assert [(e["data"]["amount_paid"], e["data"]["additional_status"]) for e in settled] == [
        ("0.5", "none")
    ]
    for _ in range(2):  # the original is orphaned once two snapshots at the tip miss it
        await world.look()
    done = await world.fetch(invoice)
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "settled",
        "none",
        "0.5",
    )
    assert {p["txid"]: p["status"] for p in done["payments"]} == {
        original: "orphaned",
        bumped: "confirmed",
    }


async def test_double_spend_to_another_address_reopens_the_invoice(world: World) -> None:
    invoice = await world.invoice("0.5")
    original = await world.pay(invoice, LTC // 2)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "processing"

    # The payer signs a conflicting transaction: the same inputs, paying itself, a higher fee.
    await double_spend(world.node, original)

    outcome = await world.look()
    assert (outcome.received, outcome.evicted) == (0, 0)  # one snapshot proves no eviction
    assert (await world.fetch(invoice))["status"] == "processing"
    outcome = await world.look()
    assert (outcome.received, outcome.evicted) == (0, 1)
    state = await world.fetch(invoice)
    assert (state["status"], state["amount_paid"]) == ("new", "0")
    assert (await world.event_types(invoice))[-2:] == [
        "invoice.payment_removed",
        "invoice.reopened",
    ]
    await world.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "new"


async def test_payment_after_expiry_is_paid_late(isolated: World) -> None:
    world = isolated
    invoice = await world.invoice("0.5", expires_in=60)
    later = world.clock.advance(120)
    # The node's clock moves too, so its next block is stamped after the expiry.
    await world.node.rpc("setmocktime", int(later.timestamp()))
    await world.pay(invoice, LTC // 2)
    await world.look()
    seen = await world.fetch(invoice)
    assert (seen["status"], seen["additional_status"]) == ("expired", "paid_late")
    await world.mine(1)
    await world.look()
    family = world.gateway.container.family(world.network)
    assert await expire_due(world.gateway.container.db, world.network, family, world.clock) == 0
    done = await world.fetch(invoice)
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "expired",
        "paid_late",
        "0.5",
    )
    assert done["payments"][0]["confirmations"] == 1
    assert (await world.event_types(invoice))[-1] == "invoice.expired"


async def test_block_stamped_after_expiry_proves_nothing_on_its_own(isolated: World) -> None:
    # Litecoin (like Bitcoin) accepts a block stamped before its predecessor, as long as it
    # is above the median of the 11 before it: only that median proves expiry.
    world = isolated
    await world.mine(11)
    await world.sync()
    # Regtest mines faster than a block a second, so its stamps run ahead of the wall clock:
    # the gateway's clock catches up with the tip, the invoice expires a minute later.
    tip = await world.node.rpc("getblockheader", await world.node.rpc("getbestblockhash"))
    now = max(int(world.clock.now().timestamp()), tip["time"])
    world.clock.advance(now - world.clock.now().timestamp())
    invoice = await world.invoice("0.5", expires_in=60)
    family = world.gateway.container.family(world.network)

    async def expire() -> int:
        return await expire_due(world.gateway.container.db, world.network, family, world.clock)

    await world.node.rpc("setmocktime", now + 700)  # a miner's clock 11 minutes ahead
    await world.mine(1)
    await world.sync()
    assert await expire() == 0
    await world.node.rpc("setmocktime", now + 5)  # the next miner stamps before expiry
    txid = await world.pay(invoice, LTC // 2)
    await world.mine(1)
    await world.sync()
    header = await world.node.rpc("getblockheader", await world.node.rpc("getbestblockhash"))
    assert header["time"] < now + 60  # mined in time, after a block stamped past expiry
    state = await world.fetch(invoice)
    assert (state["status"], state["additional_status"]) == ("settled", "none")
    assert [p["txid"] for p in state["payments"]] == [txid]
    assert "invoice.expired" not in await world.event_types(invoice)


async def test_reorg_removes_a_confirmed_payment_and_reconsiderblock_restores_it(
    isolated: World,
) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=2)
    txid = await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["payments"][0]["confirmations"] == 1

    # The paying block leaves the chain, which is now shorter than ours: the node says our
    # block left its best chain (confirmations -1 on an invalid branch), proof enough at once.
    await node.rpc("invalidateblock", paying_block)
    assert txid in await node.rpc("getrawmempool")  # back in the mempool
    await world.sync()
    reopened = await world.fetch(invoice)
    assert (reopened["status"], reopened["payments"][0]["status"]) == ("new", "orphaned")

    await world.look()  # still in the mempool: the same payment counts again, unconfirmed
    back = await world.fetch(invoice)
    assert (back["status"], back["payments"][0]["status"]) == ("processing", "pending")
    assert back["payments"][0]["block_number"] is None
    # A longer branch leaves it out (a fee delta far below zero), as a competing miner would.
    await node.rpc("prioritisetransaction", txid, 0, -LTC)
    branch = await node.mine(2)
    await node.rpc("prioritisetransaction", txid, 0, LTC)
    assert txid in await node.rpc("getrawmempool")
    await world.look()
    assert (await world.fetch(invoice))["status"] == "processing"

    # The original branch returns and grows longest: the payment is in its old block again.
    await node.rpc("reconsiderblock", paying_block)
    await node.rpc("invalidateblock", branch[0])
    assert await node.rpc("getbestblockhash") == paying_block
    await node.mine(2)
    await world.look()
    done = await world.fetch(invoice)
    assert (done["status"], done["amount_paid"]) == ("settled", "0.5")
    [payment] = done["payments"]
    assert (payment["txid"], payment["confirmations"], payment["status"]) == (
        txid,
        3,
        "confirmed",
    )
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


async def test_confirmed_payment_reorged_out_makes_the_invoice_invalid(isolated: World) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=1)
    txid = await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "settled"

    await node.rpc("invalidateblock", paying_block)
    await node.rpc("prioritisetransaction", txid, 0, -LTC)  # a branch without the payment
    await node.mine(2)
    await world.sync()
    state = await world.fetch(invoice)
    assert (state["status"], state["payments"][0]["status"]) == ("invalid", "orphaned")
    assert (await world.event_types(invoice))[-2:] == [
        "invoice.payment_removed",
        "invoice.invalid",
    ]


async def test_node_whose_chain_got_shorter_proves_the_reorg_at_once(isolated: World) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=1)
    txid = await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "settled"
    height = await node.tip()

    await node.rpc("invalidateblock", paying_block)
    assert await node.tip() == height - 1  # shorter than our cursor, and its tip is ours
    header = await node.rpc("getblockheader", paying_block)
    assert header["confirmations"] == -1
    outcome = await sync_once(world.gateway.tracker(NETWORK))
    assert (outcome.reorged_to, outcome.height) == (height - 1, height - 1)
    state = await world.fetch(invoice)
    assert (state["status"], state["payments"][0]["status"]) == ("invalid", "orphaned")
    assert (await world.event_types(invoice))[-2:] == [
        "invoice.payment_removed",
        "invoice.invalid",
    ]
    assert txid in await node.rpc("getrawmempool")


async def test_lagging_node_proves_nothing(
    isolated: World, litecoind_backup: LitecoindNode
) -> None:
    """A backup node behind us never rolls anything back: neither when it has not seen our
    block, nor when it knows the block's header only (confirmations -1 while it downloads)."""
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=1)
    await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    height = await node.tip()
    backup = litecoind_backup
    # The backup gets our chain up to the block before the paying one.
    shared = await backup.tip()
    assert await backup.rpc("getblockhash", shared) == await node.rpc("getblockhash", shared)
    for number in range(shared + 1, height):
        block = await node.rpc("getblock", await node.rpc("getblockhash", number), 0)
        assert await backup.rpc("submitblock", block) is None
    assert await backup.tip() == height - 1
    async with world.gateway.container.db.uow() as uow:
        cursor = await uow.chain.cursor(NETWORK)
    assert cursor is not None and cursor.hash == paying_block

    lagging = world.gateway.container.family(world.network)
    tracker = Tracker(
        db=world.gateway.container.db,
        chain=lagging.client(backup.network(name=NETWORK)),
        network=world.network,
        family=lagging,
        clock=world.clock,
    )
    try:
        assert (await sync_once(tracker)).reorged_to is None  # never saw our block
        raw_header = await node.rpc("getblockheader", paying_block, False)
        assert await backup.rpc("submitheader", raw_header) is None
        header = await backup.rpc("getblockheader", paying_block)
        assert header["confirmations"] == -1  # known, not connected: no proof of anything
        assert (await sync_once(tracker)).reorged_to is None
        assert (await world.fetch(invoice))["status"] == "settled"
        await backup.rpc("submitblock", await node.rpc("getblock", paying_block, 0))
        caught_up = await sync_once(tracker)
        assert (caught_up.reorged_to, caught_up.height, caught_up.at_tip) == (
            None,
            height,
            True,
        )
    finally:
        await tracker.chain.close()
    state = await world.fetch(invoice)
    assert (state["status"], state["payments"][0]["status"]) == ("settled", "confirmed")
    assert "invoice.payment_removed" not in await world.event_types(invoice)


async def test_invalid_invoice_is_settled_again_when_its_payment_is_mined_again(
    isolated: World,
) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.5", required_confirmations=1)
    txid = await world.pay(invoice, LTC // 2)
    [paying_block] = await node.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "settled"

    # A longer competing branch without the payment: the invoice is invalid, the money gone.
    await node.rpc("invalidateblock", paying_block)
    await node.rpc("prioritisetransaction", txid, 0, -LTC)
    await node.mine(2)
    await node.rpc("prioritisetransaction", txid, 0, LTC)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "invalid"
    # Back in the mempool: announced, but a reversed payment counts again only once mined.
    assert txid in await node.rpc("getrawmempool")
    await world.look()
    waiting = await world.fetch(invoice)
    assert (waiting["status"], waiting["payments"][0]["status"]) == ("invalid", "pending")

    [again] = await node.mine(1)  # the same transaction, mined again from the mempool
    await world.look()
    done = await world.fetch(invoice)
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "settled",
        "none",
        "0.5",
    )
    [payment] = done["payments"]
    assert (payment["txid"], payment["block_hash"], payment["status"]) == (
        txid,
        again,
        "confirmed",
    )
    events = await world.shop.events(invoice["id"])
    assert [e["type"] for e in events] == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
        "invoice.payment_removed",
        "invoice.invalid",
        "invoice.payment_received",
        "invoice.revalidated",
        "invoice.processing",
        "invoice.settled",
    ]
    revalidated, processing, settled = events[-3:]
    assert (revalidated["previous_status"], revalidated["data"]["status"]) == ("invalid", "settled")
    assert (processing["previous_status"], settled["previous_status"]) == ("invalid", "processing")
    assert events[5]["previous_status"] == "settled"  # invoice.invalid: what it reversed


async def test_coinbase_output_waits_for_maturity(isolated: World) -> None:
    world, node = isolated, isolated.node
    invoice = await world.invoice("0.001", required_confirmations=1)
    await node.mine(1, invoice["address"])  # the block reward pays the invoice
    await world.look()
    seen = await world.fetch(invoice)
    assert (seen["status"], seen["additional_status"]) == ("processing", "overpaid")
    await node.mine(98)
    await world.look()
    young = await world.fetch(invoice)
    assert young["status"] == "processing" and young["payments"][0]["confirmations"] == 99
    await node.mine(1)
    await world.look()
    assert (await world.fetch(invoice))["status"] == "settled"
