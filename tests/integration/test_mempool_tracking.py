"""Mempool sightings, RBF evictions and coinbase maturity, decided by the services on a real
database (SQLite and PostgreSQL) against a scripted chain.

The scripted chain is a fake of the node only: it lets these tests order every race exactly
(a transaction mined between the mempool look and the tip check, a replacement arriving in one
snapshot), fast. Real-litecoind twins: two trackers at once, a sighting mined after its watch
window, the two-snapshot eviction rule, a reorged-out payment back through the mempool and the
gap limit in test_bitcoin_mempool_races.py; sighting then mined, RBF replacement, double spend,
fee bump mined first, expiry by median-time-past, paid_late, reorgs and coinbase maturity in
test_bitcoin_payment_loop.py. The two races that need a block to arrive inside one mempool
pass (mined between the look and the tip check, a look that was thrown away) have no twin: a
real node cannot be stopped at that line.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.family import EvmFamily
from chaingate.domain.chain import (
    BlockRef,
    Canonical,
    ChainTimeRule,
    MempoolView,
    ReorgDetected,
    ScanResult,
    Transfer,
)
from chaingate.ports import WatchLookup
from chaingate.services.expiry import expire_due
from chaingate.services.mempool import sync_mempool
from chaingate.services.tracking import Tracker, sync_once
from tests.support.clock import SteerableClock
from tests.support.gateway import Gateway, MerchantHandle, running_gateway

COIN = 10**18  # the scripted network reuses an EVM config: 18 decimals


def _hash(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ScriptedChain:
    """A chain whose blocks and mempool the test writes; answers like a ChainClient."""

    start: datetime
    blocks: list[BlockRef] = field(default_factory=list)
    mined: dict[str, list[Transfer]] = field(default_factory=dict)  # block hash -> transfers
    pool: dict[str, list[Transfer]] = field(default_factory=dict)  # txid -> outputs
    mine_during_mempool_look: bool = False
    hidden: set[str] = field(default_factory=set)  # txids the node answering next lacks
    loaded: bool = True  # False: the answering node is still loading its mempool
    matched: dict[str, list[Transfer]] = field(default_factory=dict)  # txid -> watched outputs
    held: set[str] = field(default_factory=set)  # txids the miner leaves in the mempool
    clock_skew: timedelta = timedelta()  # added to the timestamps of blocks mined from now on
    _branch: int = 0

    def __post_init__(self) -> None:
        self.blocks.append(BlockRef(0, _hash("genesis"), _hash("none"), self.start))
        self.mined[self.blocks[0].hash] = []

    def pay(self, txid: str, *outputs: tuple[str, int]) -> None:
        self.pool[txid] = [
            Transfer(txid, str(vout), address, "ETH", amount, None)
            for vout, (address, amount) in enumerate(outputs)
        ]

    def mine(self, count: int = 1, *, coinbase_to: str | None = None) -> None:
        for _ in range(count):
            parent = self.blocks[-1]
            number = parent.number + 1
            ref = BlockRef(
                number,
                _hash(f"{self._branch}/{number}"),
                parent.hash,
                self.start + timedelta(seconds=number) + self.clock_skew,
            )
            included = [txid for txid in self.pool if txid not in self.held]
            transfers = [replace(t, block=ref) for txid in included for t in self.pool[txid]]
            if coinbase_to is not None:
                reward = Transfer(f"cb{number}", "0", coinbase_to, "ETH", COIN, ref, coinbase=True)
                transfers.append(reward)
                coinbase_to = None
            for txid in included:
                del self.pool[txid]
            self.blocks.append(ref)
            self.mined[ref.hash] = transfers

    def disconnect(self, count: int) -> None:
        """Blocks leave the chain; their transactions go back to the mempool."""
        for _ in range(count):
            gone = self.blocks.pop()
            for transfer in self.mined.pop(gone.hash):
                if not transfer.coinbase:
                    self.pool.setdefault(transfer.txid, []).append(replace(transfer, block=None))
        self._branch += 1

    async def verify_chain(self) -> None:
        return None

    async def tip_height(self) -> int:
        return self.blocks[-1].number

    async def block_at(self, height: int) -> BlockRef | None:
        return self.blocks[height] if 0 <= height < len(self.blocks) else None

    async def canonical(self, block: BlockRef) -> Canonical:
        found = await self.block_at(block.number)
        if found is None:
            return Canonical.UNKNOWN
        return Canonical.YES if found.hash == block.hash else Canonical.NO

    async def scan(
        self, start: int, end: int, parent: BlockRef | None, is_watched: WatchLookup
    ) -> ScanResult:
        if parent is not None and self.blocks[start].parent_hash != parent.hash:
            raise ReorgDetected(start)
        blocks = tuple(self.blocks[start : end + 1])
        transfers = [t for b in blocks for t in self.mined[b.hash]]
        watched = await is_watched({t.to_address for t in transfers})
        return ScanResult(blocks, tuple(t for t in transfers if t.to_address in watched))

    async def mempool(self, is_watched: WatchLookup) -> MempoolView:
        if self.mine_during_mempool_look:
            self.mine()  # a block arrived just before the node answered
        # Like the real client: each transaction is matched once, when first seen.
        for gone in set(self.matched) - set(self.pool):
            del self.matched[gone]
        fresh = [t for txid, outs in self.pool.items() if txid not in self.matched for t in outs]
        watched = await is_watched({t.to_address for t in fresh}) if fresh else set()
        for txid, outs in self.pool.items():
            if txid not in self.matched:
                self.matched[txid] = [t for t in outs if t.to_address in watched]
        pool = [txid for txid in self.pool if txid not in self.hidden]
        transfers = tuple(t for txid in pool for t in self.matched[txid])
        return MempoolView(transfers, frozenset(pool), loaded=self.loaded)

    async def fee_rate(self, target_blocks: int) -> int | None:
        return None

    async def wait_for_new_head(self, timeout: float) -> None:  # noqa: ASYNC109
        return None

    async def close(self) -> None:
        return None


@dataclass
class World:
    gateway: Gateway
    shop: MerchantHandle
    chain: ScriptedChain
    tracker: Tracker

    async def sync(self) -> None:
        while not (await sync_once(self.tracker)).at_tip:
            pass

    async def look(self) -> bool:
        return (await sync_mempool(self.tracker)).applied

    async def invoice(self, amount: str = "1", **fields: Any) -> dict[str, Any]:
        return await self.shop.invoice(amount=amount, currency="ETH", network="scripted", **fields)

    async def state(self, invoice_id: object) -> dict[str, Any]:
        return await self.shop.fetch(str(invoice_id))

    async def events(self, invoice_id: object) -> list[str]:
        return [e["type"] for e in await self.shop.events(str(invoice_id))]


@pytest.fixture
async def world(clean_database_url: str) -> AsyncIterator[World]:
    start = datetime.now(UTC).replace(microsecond=0)
    network = EvmNetworkConfig(
        name="scripted",
        chain_id=999_001,
        rpc_urls=["http://127.0.0.1:9"],
        required_confirmations=2,
        start_block=0,
    )
    clock = SteerableClock(start)
    chain = ScriptedChain(start)
    async with running_gateway(clean_database_url, [network], clock=clock) as gateway:
        shop = await gateway.merchant()
        tracker = Tracker(
            db=gateway.container.db,
            chain=chain,
            network=network,
            family=gateway.container.family(network),
            clock=clock,
        )
        world = World(gateway, shop, chain, tracker)
        await world.sync()
        yield world


async def test_mempool_sighting_then_mined_is_one_payment(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    seen = await world.state(invoice["id"])
    assert seen["status"] == "processing"
    [payment] = seen["payments"]
    assert (payment["block_number"], payment["confirmations"], payment["status"]) == (
        None,
        0,
        "pending",
    )
    assert await world.look()  # the same snapshot again: nothing new
    world.chain.mine()
    await world.sync()
    mined = await world.state(invoice["id"])
    [again] = mined["payments"]
    assert again["id"] == payment["id"]
    assert (again["block_number"], again["confirmations"]) == (world.chain.blocks[-1].number, 1)
    assert mined["status"] == "processing" and mined["amount_paid"] == "1"
    world.chain.mine()
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "settled"
    assert await world.look()
    assert await world.events(invoice["id"]) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
    ]


async def test_two_trackers_looking_at_once_credit_once(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    twin = replace(world.tracker)  # a second tracker process on the same network and database
    outcomes = await asyncio.gather(sync_mempool(world.tracker), sync_mempool(twin))
    assert sum(o.received for o in outcomes) == 1
    state = await world.state(invoice["id"])
    assert len(state["payments"]) == 1 and state["amount_paid"] == "1"
    assert await world.events(invoice["id"]) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
    ]


async def test_sighting_mined_after_its_watch_window_closed_is_not_orphaned(
    world: World,
) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    world.chain.clock_skew = timedelta(days=3)  # stuck in the mempool for days...
    world.chain.held.add("tx1")
    world.chain.mine()
    await world.sync()
    assert await world.look()
    world.chain.held.clear()
    world.chain.mine(2)  # ...then mined, in blocks stamped after the watch window
    await world.sync()
    assert await world.look()
    state = await world.state(invoice["id"])
    [payment] = state["payments"]
    assert (payment["status"], payment["block_number"]) == ("confirmed", 2)
    assert state["status"] == "settled"


async def test_mempool_is_ignored_while_behind_the_tip(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.mine()  # the tracker has not seen this block
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert not await world.look()
    assert (await world.state(invoice["id"]))["payments"] == []
    await world.sync()
    assert await world.look()
    assert (await world.state(invoice["id"]))["status"] == "processing"


async def test_sighting_from_a_look_that_was_not_applied_counts_later(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    world.chain.mine_during_mempool_look = True
    world.chain.held.add("tx1")  # the miner leaves it out
    assert not await world.look()  # a block arrived: the look is thrown away...
    world.chain.mine_during_mempool_look = False
    await world.sync()
    # ...but the chain client already matched tx1; the next look must still credit it.
    assert await world.look()
    assert (await world.state(invoice["id"]))["status"] == "processing"


async def test_mined_between_look_and_tip_check_is_not_an_eviction(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    world.chain.pay("tx2", ("0x" + "11" * 20, COIN))
    world.chain.mine_during_mempool_look = True  # tx1 leaves the mempool into a block
    assert not await world.look()
    world.chain.mine_during_mempool_look = False
    state = await world.state(invoice["id"])
    assert [p["status"] for p in state["payments"]] == ["pending"]
    await world.sync()
    state = await world.state(invoice["id"])
    assert state["status"] == "processing"
    assert [p["block_number"] for p in state["payments"]] == [world.chain.blocks[-1].number]


async def test_rbf_replacement_to_the_same_address_keeps_the_invoice_processing(
    world: World,
) -> None:
    invoice = await world.invoice("1")
    address = str(invoice["address"])
    world.chain.pay("tx1", (address, COIN), ("0x" + "22" * 20, 5))
    assert await world.look()
    del world.chain.pool["tx1"]
    world.chain.pay("tx1-bumped", ("0x" + "22" * 20, 4), (address, COIN))
    assert await world.look()
    # One snapshot without tx1 proves nothing yet (a backup node's, a node still loading).
    state = await world.state(invoice["id"])
    assert {p["txid"]: p["status"] for p in state["payments"]} == {
        "tx1": "pending",
        "tx1-bumped": "pending",
    }
    assert await world.look()
    state = await world.state(invoice["id"])
    assert state["status"] == "processing" and state["amount_paid"] == "1"
    statuses = {p["txid"]: p["status"] for p in state["payments"]}
    assert statuses == {"tx1": "orphaned", "tx1-bumped": "pending"}
    world.chain.mine(2)
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "settled"
    events = await world.events(invoice["id"])
    assert events[:3] == ["invoice.created", "invoice.payment_received", "invoice.processing"]
    # The replacement's sighting, then the original's removal: no reopening.
    assert events[3:5] == ["invoice.payment_received", "invoice.payment_removed"]
    assert events[5:] == ["invoice.settled"]


async def test_double_spend_elsewhere_reopens_the_invoice(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    del world.chain.pool["tx1"]
    world.chain.pay("tx1-conflict", ("0x" + "33" * 20, COIN))
    assert await world.look()
    assert (await world.state(invoice["id"]))["status"] == "processing"  # one look: not yet
    assert await world.look()
    state = await world.state(invoice["id"])
    assert (state["status"], state["amount_paid"]) == ("new", "0")
    assert (await world.events(invoice["id"]))[-2:] == [
        "invoice.payment_removed",
        "invoice.reopened",
    ]
    assert await world.look()  # nothing more to say
    assert len(await world.events(invoice["id"])) == 5


async def test_reorged_out_payment_back_in_the_mempool_then_remined(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    world.chain.mine()
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "processing"
    world.chain.disconnect(1)
    world.chain.pool.clear()  # the new branch does not hold it, nor does the mempool yet
    world.chain.mine(2)
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "new"
    world.chain.pay("tx1", (str(invoice["address"]), COIN))  # rebroadcast
    assert await world.look()
    assert (await world.state(invoice["id"]))["status"] == "processing"
    world.chain.mine(2)
    await world.sync()
    state = await world.state(invoice["id"])
    assert state["status"] == "settled"
    [payment] = state["payments"]
    assert (payment["status"], payment["confirmations"]) == ("confirmed", 2)


async def test_coinbase_output_waits_for_maturity(world: World) -> None:
    invoice = await world.invoice("1", required_confirmations=1)
    world.chain.mine(coinbase_to=str(invoice["address"]))
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "processing"
    world.chain.mine(98)
    await world.sync()
    state = await world.state(invoice["id"])
    assert state["status"] == "processing"
    assert state["payments"][0]["confirmations"] == 99
    world.chain.mine(1)
    await world.sync()
    assert (await world.state(invoice["id"]))["status"] == "settled"


async def test_an_orphaned_payment_does_not_use_its_address_for_the_gap_limit(
    world: World,
) -> None:
    invoice = await world.invoice("1")
    async with world.gateway.container.db.uow() as uow:
        stored = await uow.invoices.get(str(invoice["id"]))
        assert stored is not None
        assert await uow.wallets.highest_paid_index(stored.wallet_id) is None
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    async with world.gateway.container.db.uow() as uow:
        assert await uow.wallets.highest_paid_index(stored.wallet_id) == stored.derivation_index
    del world.chain.pool["tx1"]  # double-spent elsewhere: the address received nothing
    for _ in range(2):
        assert await world.look()
    assert [p["status"] for p in (await world.state(invoice["id"]))["payments"]] == ["orphaned"]
    async with world.gateway.container.db.uow() as uow:
        assert await uow.wallets.highest_paid_index(stored.wallet_id) is None


async def test_fee_bump_mined_before_the_mempool_pass_settles_with_the_mined_amount(
    world: World,
) -> None:
    invoice = await world.invoice("1", required_confirmations=1)
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    del world.chain.pool["tx1"]  # replaced (RBF) by tx2, which is mined at once
    world.chain.pay("tx2", (str(invoice["address"]), COIN))
    world.chain.mine()
    await world.sync()  # the block scan runs before the next mempool look
    events = await world.shop.events(str(invoice["id"]))
    [settled] = [e for e in events if e["type"] == "invoice.settled"]
    assert (settled["data"]["amount_paid"], settled["data"]["additional_status"]) == ("1", "none")
    state = await world.state(invoice["id"])
    assert (state["status"], state["additional_status"], state["amount_paid"]) == (
        "settled",
        "none",
        "1",
    )
    for _ in range(2):  # tx1 is orphaned once two looks at the tip miss it
        assert await world.look()
    state = await world.state(invoice["id"])
    assert {p["txid"]: p["status"] for p in state["payments"]} == {
        "tx1": "orphaned",
        "tx2": "confirmed",
    }
    assert (state["status"], state["amount_paid"]) == ("settled", "1")


async def test_full_payment_counted_after_expiry_is_flagged_paid_late(world: World) -> None:
    # The domain rule on a chain whose block proved expiry: the next block, stamped earlier,
    # pays the whole amount. The invoice stays expired, and says so in an event.
    invoice = await world.invoice("1", expires_in=60)
    world.chain.start += timedelta(seconds=600)
    world.chain.mine()
    await world.sync()
    await expire_due(
        world.gateway.container.db,
        world.tracker.network,
        world.tracker.family,
        world.tracker.clock,
    )
    assert (await world.state(invoice["id"]))["status"] == "expired"
    world.chain.start -= timedelta(seconds=600)
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    world.chain.mine()
    await world.sync()
    state = await world.state(invoice["id"])
    assert (state["status"], state["additional_status"], state["amount_paid"]) == (
        "expired",
        "paid_late",
        "1",
    )
    [received] = [
        e
        for e in await world.shop.events(str(invoice["id"]))
        if e["type"] == "invoice.payment_received"
    ]
    assert received["data"]["additional_status"] == "paid_late"


class MedianTimeFamily(EvmFamily):
    chain_time = ChainTimeRule.MEDIAN_TIME_PAST


async def test_bitcoin_expiry_waits_for_median_time_past(world: World) -> None:
    # A Bitcoin-family block may be stamped before its predecessor (above the median of the 11
    # before it): one block stamped after expires_at proves nothing there.
    # The scripted chain is followed under the Bitcoin family's chain-time rule: what the
    # services do with the rule is under test here, not a family's node client.
    tracker = replace(world.tracker, family=MedianTimeFamily())
    invoice = await world.invoice("1", expires_in=60)

    async def expire() -> int:
        return await expire_due(tracker.db, tracker.network, tracker.family, tracker.clock)

    async def sync() -> None:
        while not (await sync_once(tracker)).at_tip:
            pass

    world.chain.mine(10)
    world.chain.start += timedelta(seconds=600)  # a miner stamps 10 minutes ahead
    world.chain.mine()
    await sync()
    assert await expire() == 0
    assert (await world.state(invoice["id"]))["status"] == "new"
    world.chain.start -= timedelta(seconds=600)  # the next block is stamped before expiry
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    world.chain.mine()
    await sync()
    assert (await world.state(invoice["id"]))["status"] == "processing"
    # Once the median of the last 11 blocks passes expires_at, an unpaid invoice expires.
    other = await world.invoice("1", expires_in=60)
    world.chain.start += timedelta(seconds=120)
    world.chain.mine(4)
    await sync()
    assert await expire() == 0  # with the one stamped ahead, 5 of the last 11 after expiry
    world.chain.mine(1)
    await sync()
    assert await expire() == 1
    assert (await world.state(other["id"]))["status"] == "expired"


async def test_one_snapshot_missing_a_sighting_does_not_evict_it(world: World) -> None:
    invoice = await world.invoice("1")
    world.chain.pay("tx1", (str(invoice["address"]), COIN))
    assert await world.look()
    world.chain.hidden.add("tx1")  # a failover node that never received tx1 answers once
    assert await world.look()
    world.chain.hidden.clear()  # the primary answers again: tx1 is there
    assert await world.look()
    world.chain.hidden.add("tx1")  # missing again, but the run of misses was broken
    assert await world.look()
    state = await world.state(invoice["id"])
    assert (state["status"], [p["status"] for p in state["payments"]]) == (
        "processing",
        ["pending"],
    )
    world.chain.loaded = False  # a node still loading its mempool proves nothing
    for _ in range(3):
        assert await world.look()
    assert [p["status"] for p in (await world.state(invoice["id"]))["payments"]] == ["pending"]
    world.chain.loaded = True  # the second loaded snapshot in a row without tx1: evicted
    assert (await sync_mempool(world.tracker)).evicted == 1
    state = await world.state(invoice["id"])
    assert (state["status"], [p["status"] for p in state["payments"]]) == ("new", ["orphaned"])
    assert (await world.events(invoice["id"]))[-2:] == [
        "invoice.payment_removed",
        "invoice.reopened",
    ]
