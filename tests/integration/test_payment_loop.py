"""The core loop on a real anvil node and a real database (SQLite and PostgreSQL):
invoice -> fresh address -> independent payer -> tracker -> confirmations/reorgs -> events.

The payer is anvil's own unlocked account (eth_sendTransaction): nothing of ours signs the
payments the tracker must find. The tracker is stepped with `gateway.sync` so each assertion
sees exactly the blocks the test mined.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chaingate.adapters.chains.evm.artifacts import NFT_LIKE_TRANSFER
from chaingate.adapters.chains.evm.wallet_ops import encode_call
from chaingate.config import TokenConfig
from chaingate.services.expiry import expire_due
from chaingate.services.tracking import sync_once
from tests.support.anvil import AnvilNode
from tests.support.clock import SteerableClock
from tests.support.gateway import Gateway, MerchantHandle, running_gateway

pytestmark = pytest.mark.anvil

ETH = 10**18
USDT = 10**6


@dataclass
class World:
    node: AnvilNode
    gateway: Gateway
    shop: MerchantHandle
    usdt: TokenConfig
    clock: SteerableClock

    @property
    def payer(self) -> str:
        return self.node.accounts[1].address

    async def pay_eth(self, to: str, wei: int) -> str:
        txid: str = await self.node.rpc(
            "eth_sendTransaction", {"from": self.payer, "to": to, "value": hex(wei)}
        )
        await self.mined(txid)
        return txid

    async def mined(self, txid: str) -> None:
        # anvil answers eth_sendTransaction before its automined block exists.
        for _ in range(200):
            if await self.receipt(txid) is not None:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{txid} was not mined")

    async def pay_token(
        self, to: str, units: int, *, contract: str | None = None, gas: int | None = None
    ) -> str:
        data = encode_call("transfer(address,uint256)", ["address", "uint256"], [to, units])
        tx: dict[str, Any] = {
            "from": self.payer,
            "to": contract or self.usdt.contract,
            "data": "0x" + data.hex(),
        }
        if gas is not None:
            tx["gas"] = hex(gas)
        txid: str = await self.node.rpc("eth_sendTransaction", tx)
        await self.mined(txid)
        return txid

    async def receipt(self, txid: str) -> dict[str, Any] | None:
        answer: dict[str, Any] | None = await self.node.rpc("eth_getTransactionReceipt", txid)
        return answer

    async def sync(self) -> None:
        await self.gateway.sync("anvil")

    async def event_types(self, invoice_id: str) -> list[str]:
        return [e["type"] for e in await self.shop.events(invoice_id)]

    async def expire(self) -> int:
        network = self.gateway.container.settings.networks[0]
        family = self.gateway.container.family(network)
        return await expire_due(self.gateway.container.db, network, family, self.clock)

    async def chain_time(self) -> datetime:
        block = await self.node.rpc("eth_getBlockByNumber", "latest", False)
        return datetime.fromtimestamp(int(block["timestamp"], 16), UTC)


@pytest.fixture
async def world(anvil_isolated: AnvilNode, clean_database_url: str) -> AsyncIterator[World]:
    node = anvil_isolated
    usdt = await node.deploy_token("USDT", 6, holder=node.accounts[1].address)
    network = node.network(
        [usdt], required_confirmations=3, start_block=await node.tip(), scan_batch_blocks=7
    )
    # Start the clock at the chain's own time: earlier tests may have moved anvil's clock on.
    block = await node.rpc("eth_getBlockByNumber", "latest", False)
    chain_now = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    clock = SteerableClock(max(chain_now, datetime.now(UTC)))
    async with running_gateway(clean_database_url, [network], clock=clock) as gateway:
        shop = await gateway.merchant()
        world = World(node, gateway, shop, usdt, clock)
        await world.sync()
        await node.mine(4)  # some verified history below the tests' blocks, for reorgs
        await world.sync()
        yield world


async def test_eth_invoice_paid_exactly(world: World) -> None:
    invoice = await world.shop.invoice(amount="0.5", currency="ETH", network="anvil")
    txid = await world.pay_eth(invoice["address"], ETH // 2)
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert seen["status"] == "processing"
    assert seen["amount_paid"] == "0.5" and seen["amount_due"] == "0"
    [payment] = seen["payments"]
    assert (payment["txid"], payment["output"], payment["log_index"]) == (txid, "native", None)
    assert (payment["amount"], payment["confirmations"], payment["status"]) == ("0.5", 1, "pending")
    assert payment["from"] == world.payer

    await world.node.mine(1)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "processing"
    await world.node.mine(1)
    await world.sync()
    settled = await world.shop.fetch(invoice["id"])
    assert settled["status"] == "settled" and settled["additional_status"] == "none"
    assert settled["payments"][0]["confirmations"] == 3
    assert settled["payments"][0]["status"] == "confirmed"
    assert await world.event_types(invoice["id"]) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
    ]
    events = await world.shop.events(invoice["id"])
    assert events[1]["payment"]["txid"] == txid
    assert events[-1]["data"]["status"] == "settled"
    # The tracker's events link the same checkout page as the API (dev mode: the API's address).
    assert {e["data"]["checkout_url"] for e in events} == {settled["checkout_url"]}
    assert settled["checkout_url"].endswith(f"/i/{invoice['id']}")


async def test_usdt_invoice_paid_in_two_partial_transfers(world: World) -> None:
    invoice = await world.shop.invoice(amount="25", currency="USDT", network="anvil")
    await world.pay_token(invoice["address"], 10 * USDT)
    await world.sync()
    partial = await world.shop.fetch(invoice["id"])
    assert (partial["status"], partial["additional_status"]) == ("new", "underpaid")
    assert (partial["amount_paid"], partial["amount_due"]) == ("10", "15")
    assert "uint256=15000000" in partial["payment_uri"]  # the QR asks for what is left

    await world.pay_token(invoice["address"], 15 * USDT)
    await world.node.mine(2)
    await world.sync()
    done = await world.shop.fetch(invoice["id"])
    assert (done["status"], done["additional_status"], done["amount_paid"]) == (
        "settled",
        "none",
        "25",
    )
    assert [p["amount"] for p in done["payments"]] == ["10", "15"]
    assert all(p["output"] is None and p["log_index"] is not None for p in done["payments"])
    assert all(p["token_contract"] == world.usdt.contract for p in done["payments"])
    assert (await world.event_types(invoice["id"])).count("invoice.payment_received") == 2


async def test_underpaid_then_expired(world: World) -> None:
    invoice = await world.shop.invoice(amount="1", currency="ETH", network="anvil", expires_in=600)
    await world.pay_eth(invoice["address"], ETH // 4)
    await world.sync()
    assert await world.expire() == 0  # not yet: the chain is before expiry

    later = world.clock.advance(601)
    await world.node.rpc("evm_mine", int(later.timestamp()))
    await world.sync()
    assert await world.expire() == 1
    expired = await world.shop.fetch(invoice["id"])
    assert (expired["status"], expired["additional_status"], expired["amount_paid"]) == (
        "expired",
        "underpaid",
        "0.25",
    )
    assert (await world.event_types(invoice["id"]))[-1] == "invoice.expired"


async def test_expiry_needs_a_verified_block_after_it(world: World) -> None:
    invoice = await world.shop.invoice(amount="1", currency="ETH", network="anvil", expires_in=600)
    world.clock.advance(700)
    await world.sync()
    # The wall clock says expired, but no verified block is stamped after expiry yet: a block
    # stamped before it may still be on its way, so nothing expires.
    assert await world.expire() == 0
    later = world.clock.now()
    await world.node.rpc("evm_mine", int(later.timestamp()))
    assert await world.expire() == 0  # mined, but not yet verified by the tracker
    await world.sync()
    assert await world.expire() == 1
    assert (await world.shop.fetch(invoice["id"]))["status"] == "expired"


async def test_payment_stamped_before_expiry_but_seen_after_it_counts(world: World) -> None:
    invoice = await world.shop.invoice(amount="1", currency="ETH", network="anvil", expires_in=600)
    world.clock.advance(700)
    await world.sync()
    assert await world.expire() == 0
    # The node now delivers a block stamped before expires_at that pays in full.
    await world.pay_eth(invoice["address"], ETH)
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert seen["payments"][0]["paid_at"] < seen["expires_at"]
    assert (seen["status"], seen["additional_status"]) == ("processing", "none")


async def test_overpaid(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network="anvil", required_confirmations=1
    )
    await world.pay_eth(invoice["address"], 3 * ETH // 2)
    await world.sync()
    paid = await world.shop.fetch(invoice["id"])
    assert (paid["status"], paid["additional_status"], paid["amount_paid"]) == (
        "settled",
        "overpaid",
        "1.5",
    )


async def test_paid_after_expiry_is_recorded_not_lost(world: World) -> None:
    invoice = await world.shop.invoice(amount="5", currency="USDT", network="anvil", expires_in=600)
    late = world.clock.advance(900)
    await world.node.rpc("anvil_setNextBlockTimestamp", int(late.timestamp()))
    txid = await world.pay_token(invoice["address"], 5 * USDT)
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert (seen["status"], seen["additional_status"], seen["amount_paid"]) == (
        "expired",
        "paid_late",
        "5",
    )
    assert seen["payments"][0]["txid"] == txid
    types = await world.event_types(invoice["id"])
    assert types == ["invoice.created", "invoice.payment_received", "invoice.expired"]


async def test_same_symbol_token_at_another_contract_credits_nothing(world: World) -> None:
    fake = await world.node.deploy_token("USDT", 6, holder=world.payer)
    invoice = await world.shop.invoice(amount="5", currency="USDT", network="anvil")
    receipt_of = await world.pay_token(invoice["address"], 5 * USDT, contract=fake.contract)
    assert (await world.receipt(receipt_of) or {}).get("status") == "0x1"  # it really moved
    await world.node.mine(3)
    await world.sync()
    untouched = await world.shop.fetch(invoice["id"])
    assert (untouched["status"], untouched["amount_paid"], untouched["payments"]) == (
        "new",
        "0",
        [],
    )


async def test_reverted_transfer_credits_nothing(world: World) -> None:
    invoice = await world.shop.invoice(amount="5", currency="USDT", network="anvil")
    too_much = 10**30  # more than the payer holds: transfer() reverts
    txid = await world.pay_token(invoice["address"], too_much, gas=100_000)
    assert (await world.receipt(txid) or {}).get("status") == "0x0"  # mined, and failed
    await world.node.mine(3)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["payments"] == []


async def test_zero_value_and_nft_style_transfers_credit_nothing(world: World) -> None:
    invoice = await world.shop.invoice(amount="5", currency="USDT", network="anvil")
    await world.pay_token(invoice["address"], 0)
    await world.pay_eth(invoice["address"], 0)
    nft = await world.node.deploy(NFT_LIKE_TRANSFER)
    data = encode_call(
        "emitTransfer(address,uint256)", ["address", "uint256"], [invoice["address"], 5 * USDT]
    )
    await world.node.rpc(
        "eth_sendTransaction", {"from": world.payer, "to": nft, "data": "0x" + data.hex()}
    )
    await world.node.mine(3)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["payments"] == []


async def test_reorg_removing_an_unconfirmed_payment_reopens_the_invoice(world: World) -> None:
    invoice = await world.shop.invoice(amount="1", currency="ETH", network="anvil")
    txid = await world.pay_eth(invoice["address"], ETH)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "processing"

    await world.node.reorg(2)  # replaces the payment's block with an empty one
    assert await world.receipt(txid) is None
    await world.sync()
    reopened = await world.shop.fetch(invoice["id"])
    assert (reopened["status"], reopened["amount_paid"]) == ("new", "0")
    assert reopened["payments"][0]["status"] == "orphaned"
    assert (await world.event_types(invoice["id"]))[-2:] == [
        "invoice.payment_removed",
        "invoice.reopened",
    ]

    # The customer pays again: the invoice completes normally.
    await world.pay_eth(invoice["address"], ETH)
    await world.node.mine(2)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"


async def test_reorg_removing_a_settled_payment_invalidates(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network="anvil", required_confirmations=2
    )
    await world.pay_eth(invoice["address"], ETH)
    await world.node.mine(1)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"

    await world.node.reorg(3)
    await world.sync()
    invalid = await world.shop.fetch(invoice["id"])
    assert (invalid["status"], invalid["amount_paid"]) == ("invalid", "0")
    assert (await world.event_types(invoice["id"]))[-2:] == [
        "invoice.payment_removed",
        "invoice.invalid",
    ]


async def test_invalid_invoice_comes_back_when_its_payment_is_mined_again(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network="anvil", required_confirmations=2
    )
    txid = await world.pay_eth(invoice["address"], ETH)
    raw = await world.node.rpc("eth_getRawTransactionByHash", txid)
    await world.node.mine(1)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"

    await world.node.reorg(3)  # the payment's block is replaced by an empty one
    assert await world.receipt(txid) is None
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "invalid"

    # Anyone may broadcast the signed transaction again; it is mined in a new block.
    assert await world.node.rpc("eth_sendRawTransaction", raw) == txid
    await world.mined(txid)
    await world.sync()
    back = await world.shop.fetch(invoice["id"])
    assert (back["status"], back["amount_paid"]) == ("processing", "1")
    await world.node.mine(1)
    await world.sync()
    done = await world.shop.fetch(invoice["id"])
    assert (done["status"], done["amount_paid"]) == ("settled", "1")
    [payment] = done["payments"]
    assert (payment["txid"], payment["status"], payment["confirmations"]) == (
        txid,
        "confirmed",
        2,
    )
    events = await world.shop.events(invoice["id"])
    assert [e["type"] for e in events][-6:] == [
        "invoice.payment_removed",
        "invoice.invalid",
        "invoice.payment_received",
        "invoice.revalidated",
        "invoice.processing",
        "invoice.settled",
    ]
    revalidated, processing, settled = events[-3:]
    assert (revalidated["previous_status"], revalidated["data"]["status"]) == (
        "invalid",
        "processing",
    )
    assert (processing["previous_status"], settled["previous_status"]) == ("invalid", "processing")


async def test_replaying_blocks_credits_nothing_twice(world: World) -> None:
    invoice = await world.shop.invoice(amount="2", currency="USDT", network="anvil")
    await world.pay_token(invoice["address"], 2 * USDT)
    await world.sync()
    # Rewind the cursor as if a crash had lost the last commit's effect on it, and replay.
    tracker = world.gateway.tracker("anvil")
    async with world.gateway.container.db.uow() as uow:
        cursor = await uow.chain.cursor("anvil")
        assert cursor is not None
        stored = await uow.chain.blocks_from("anvil", cursor.height - 2)
        back = stored[-1]
        await uow.chain.move_cursor("anvil", cursor, back, world.clock.now())
        await uow.chain.forget_above("anvil", back.number)
        await uow.commit()
    await world.sync()
    again = await world.shop.fetch(invoice["id"])
    assert len(again["payments"]) == 1 and again["amount_paid"] == "2"
    assert (await world.event_types(invoice["id"])).count("invoice.payment_received") == 1
    assert tracker.network.name == "anvil"


async def test_two_trackers_at_once_credit_once(world: World) -> None:
    import asyncio

    from chaingate.services.tracking import Tracker, sync_once

    invoices = [
        await world.shop.invoice(amount="1", currency="ETH", network="anvil") for _ in range(4)
    ]
    for invoice in invoices:
        await world.pay_eth(invoice["address"], ETH)
    base = world.gateway.tracker("anvil")
    twin = Tracker(
        db=base.db,
        chain=world.gateway.container.chain_client(base.network),
        network=base.network,
        clock=base.clock,
        family=base.family,
    )
    try:
        for _ in range(6):
            await asyncio.gather(sync_once(base), sync_once(twin))
            await world.node.mine(1)
    finally:
        await twin.chain.close()
    await world.sync()
    for invoice in invoices:
        seen = await world.shop.fetch(invoice["id"])
        assert (seen["status"], len(seen["payments"]), seen["amount_paid"]) == (
            "settled",
            1,
            "1",
        ), seen
        assert (await world.event_types(invoice["id"])).count("invoice.payment_received") == 1


async def test_reorg_that_re_mines_a_settled_payment_keeps_it_settled(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network="anvil", required_confirmations=2
    )
    txid = await world.pay_eth(invoice["address"], ETH)
    raw = await world.node.rpc("eth_getRawTransactionByHash", txid)
    await world.node.mine(1)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"
    before = (await world.shop.fetch(invoice["id"]))["payments"][0]

    # A competing branch of the same length that also holds the payment, one block later.
    await world.node.rpc("anvil_reorg", 2, [[raw, 1]])
    await world.node.mine(2)
    await world.sync()
    after = await world.shop.fetch(invoice["id"])
    assert (after["status"], after["amount_paid"]) == ("settled", "1")
    [payment] = after["payments"]
    assert payment["block_hash"] != before["block_hash"] and payment["status"] == "confirmed"
    # Moved, not lost and found again: no removal, no second "received", no invalid.
    assert await world.event_types(invoice["id"]) == [
        "invoice.created",
        "invoice.payment_received",
        "invoice.processing",
        "invoice.settled",
    ]


async def test_chain_that_got_shorter_is_rolled_back_once_it_differs(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network="anvil", required_confirmations=1
    )
    snapshot = await world.node.snapshot()
    await world.pay_eth(invoice["address"], ETH)
    await world.node.mine(3)
    await world.sync()
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"

    await world.node.revert(snapshot)  # the node's chain is now shorter and lacks the payment
    tracker = world.gateway.tracker("anvil")
    # Behind us on the same blocks: indistinguishable from a lagging node, so nothing moves.
    for _ in range(3):
        assert (await sync_once(tracker)).reorged_to is None
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"
    # The shorter chain grows: its new block differs from ours at that height. That is proof.
    await world.node.mine(1)
    await world.sync()
    gone = await world.shop.fetch(invoice["id"])
    assert (gone["status"], gone["amount_paid"]) == ("invalid", "0")
    assert (await world.event_types(invoice["id"]))[-1] == "invoice.invalid"


async def test_invoice_paid_before_the_tracker_ever_ran_is_credited(
    anvil_isolated: AnvilNode, clean_database_url: str
) -> None:
    node = anvil_isolated
    await node.mine(5)
    network = node.network(required_confirmations=1)  # no start_block: "start at the tip"
    block = await node.rpc("eth_getBlockByNumber", "latest", False)
    chain_now = datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
    clock = SteerableClock(max(chain_now, datetime.now(UTC)) + timedelta(seconds=5))
    async with running_gateway(clean_database_url, [network], clock=clock) as gateway:
        shop = await gateway.merchant()
        invoice = await shop.invoice(amount="1", currency="ETH", network="anvil")
        await node.rpc("anvil_setNextBlockTimestamp", int(clock.now().timestamp()) + 1)
        await node.rpc(
            "eth_sendTransaction",
            {"from": node.accounts[1].address, "to": invoice["address"], "value": hex(ETH)},
        )
        await node.mine(3)
        await gateway.sync("anvil")  # first run: must start below the waiting invoice
        await gateway.sync("anvil")
        assert (await shop.fetch(invoice["id"]))["status"] == "settled"


async def test_another_asset_is_recorded_and_announced_but_never_counted(world: World) -> None:
    invoice = await world.shop.invoice(amount="5", currency="USDT", network="anvil")
    txid = await world.pay_eth(invoice["address"], ETH // 2)  # ETH to a USDT invoice
    await world.node.mine(3)
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert (seen["status"], seen["amount_paid"]) == ("new", "0")
    [payment] = seen["payments"]
    assert (payment["txid"], payment["currency"], payment["amount"], payment["status"]) == (
        txid,
        "ETH",
        "0.5",
        "wrong_asset",
    )
    assert (await world.event_types(invoice["id"]))[-1] == "invoice.payment_received"


async def test_address_poisoning_dust_is_recorded_but_credits_nothing(
    anvil_isolated: AnvilNode, clean_database_url: str
) -> None:
    node = anvil_isolated
    usdt = await node.deploy_token("USDT", 6, holder=node.accounts[1].address)
    guarded = TokenConfig(symbol="USDT", contract=usdt.contract, decimals=6, min_amount="0.01")
    await node.mine(3)
    network = node.network(
        [guarded],
        required_confirmations=1,
        start_block=await node.tip(),
        native_min_amount="0.0001",
    )
    async with running_gateway(clean_database_url, [network]) as gateway:
        shop = await gateway.merchant()
        await gateway.sync("anvil")
        invoice = await shop.invoice(amount="5", currency="USDT", network="anvil")
        # The poisoner's look-alike sender spams the deposit address with dust.
        poisoner = node.accounts[7].address
        data = encode_call(
            "transfer(address,uint256)", ["address", "uint256"], [invoice["address"], 1]
        )  # 0.000001 USDT
        await node.rpc(
            "eth_sendTransaction",
            {"from": node.accounts[1].address, "to": usdt.contract, "data": "0x" + data.hex()},
        )
        await node.rpc(
            "eth_sendTransaction", {"from": poisoner, "to": invoice["address"], "value": hex(10**9)}
        )  # 1 gwei of ETH
        await node.mine(2)
        await gateway.sync("anvil")
        seen = await shop.fetch(invoice["id"])
        assert (seen["status"], seen["amount_paid"]) == ("new", "0")
        assert sorted(p["status"] for p in seen["payments"]) == ["dust", "dust"]
        assert [e["type"] for e in await shop.events(invoice["id"])] == ["invoice.created"]
        # A real payment still counts.
        data = encode_call(
            "transfer(address,uint256)", ["address", "uint256"], [invoice["address"], 5 * USDT]
        )
        await node.rpc(
            "eth_sendTransaction",
            {"from": node.accounts[1].address, "to": usdt.contract, "data": "0x" + data.hex()},
        )
        await node.mine(2)
        await gateway.sync("anvil")
        assert (await shop.fetch(invoice["id"]))["status"] == "settled"
