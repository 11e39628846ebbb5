"""The tracker trusts no node: a real anvil behind a misbehaving JSON-RPC proxy
(tests/support/rpc_proxy.py), the real tracker (`sync_once`), real SQLite and PostgreSQL.

Whatever the node does - lag 20 blocks, hide logs, answer null receipts, drop connections,
forge a block's hash or parent link - nothing is credited that the chain did not pay, nothing
is credited twice, and the durable cursor (read from the database) never moves past a block
the tracker could not verify. When the node behaves again, or a healthy second node is
configured, every payment is credited exactly once.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains.evm.bloom import may_hold_log
from chaingate.adapters.chains.evm.header import check_block_hash, header_hash
from chaingate.adapters.chains.evm.parse import BadNodeAnswer
from chaingate.adapters.chains.evm.scanner import TRANSFER_TOPIC
from chaingate.adapters.chains.evm.wallet_ops import encode_call
from chaingate.domain.chain import NodeUnavailable
from tests.support.anvil import AnvilNode, find_anvil
from tests.support.evm_world import NETWORK, World, world_of
from tests.support.net import free_port
from tests.support.rpc_proxy import forged

pytestmark = pytest.mark.anvil


@pytest.fixture
async def world(anvil_isolated: AnvilNode, clean_database_url: str) -> AsyncIterator[World]:
    async with world_of(anvil_isolated, clean_database_url, healthy_backup=False) as built:
        yield built


@pytest.fixture
async def world_with_backup(
    anvil_isolated: AnvilNode, clean_database_url: str
) -> AsyncIterator[World]:
    async with world_of(anvil_isolated, clean_database_url, healthy_backup=True) as built:
        yield built


# -- a node that lags -----------------------------------------------------------------------


async def test_a_node_20_blocks_behind_never_moves_the_cursor_past_its_tip(world: World) -> None:
    world.proxy.lag(20)
    early = [await world.eth_invoice(), await world.usdt_invoice()]
    early_txids = [
        await world.pay_eth(early[0]["address"]),
        await world.pay_token(early[1]["address"]),
    ]
    await world.node.mine(25)
    late = [await world.eth_invoice(), await world.usdt_invoice()]
    late_txids = [
        await world.pay_eth(late[0]["address"]),
        await world.pay_token(late[1]["address"]),
    ]
    await world.node.mine(2)
    lagging_tip = await world.node.tip() - 20

    for _ in range(10):  # 7 blocks per step: a few steps reach the lagging tip
        outcome = await world.step()
        assert (await world.cursor()).height <= lagging_tip
        assert await world.highest_stored_block() <= lagging_tip
        if outcome.at_tip:
            break
    assert (await world.cursor()).height == lagging_tip
    for invoice, txid in zip(early, early_txids, strict=True):
        assert [p["txid"] for p in await world.payments(invoice)] == [txid]
    for invoice in late:
        assert await world.payments(invoice) == []  # mined, but beyond what the node showed

    # The node falls further behind, now below our cursor: proof of nothing, so no rollback.
    cursor = await world.cursor()
    world.proxy.lag(26)
    outcome = await world.step()
    assert outcome.reorged_to is None and outcome.height == cursor.height
    assert (await world.cursor()).hash == cursor.hash

    world.proxy.pass_through()
    await world.sync()
    assert (await world.cursor()).height == await world.node.tip()
    for invoice, txid in zip(early + late, early_txids + late_txids, strict=True):
        await world.assert_credited_once(invoice, txid)


async def test_a_node_stuck_behind_the_cursor_uncounts_nothing(
    anvil_isolated: AnvilNode, clean_database_url: str
) -> None:
    # A failover to a backup that is still syncing: it stays behind us, for as long as it likes.
    async with world_of(anvil_isolated, clean_database_url, healthy_backup=False) as world:
        start = await world.cursor()
        invoice = await world.shop.invoice(
            amount="1", currency="ETH", network=NETWORK, required_confirmations=1
        )
        txid = await world.pay_eth(invoice["address"])
        await world.node.mine(3)
        await world.sync()
        cursor = await world.cursor()
        assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"

        world.proxy.lag(cursor.height - start.height)  # stuck just below the payment
        for _ in range(5):
            await world.step_or_fail()
        assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"
        assert "invoice.payment_removed" not in await world.event_types(invoice)

        world.proxy.pass_through()
        await world.sync()
        await world.assert_credited_once(invoice, txid)
        assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"


# -- a node that hides logs -----------------------------------------------------------------


async def test_an_empty_log_list_cannot_hide_a_token_payment(world: World) -> None:
    invoice = await world.usdt_invoice()
    world.proxy.empty_logs()
    txid = await world.pay_token(invoice["address"])
    block = await world.node.rpc("eth_getBlockByNumber", "latest", False)
    # The premise: the header's bloom does announce a Transfer from the whitelisted contract.
    bloom = bytes.fromhex(block["logsBloom"][2:])
    contract = bytes.fromhex(world.usdt.contract[2:])
    assert may_hold_log(bloom, [contract], bytes.fromhex(TRANSFER_TOPIC[2:]))

    await world.assert_step_fails_untouched()
    assert world.proxy.calls["eth_getLogs"] >= 1
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    await world.assert_credited_once(invoice, txid)


async def test_hiding_one_of_two_transfers_in_a_block_is_caught(world: World) -> None:
    shown, hidden = await world.usdt_invoice(), await world.usdt_invoice()
    world.proxy.empty_logs(only_to=hidden["address"])
    txids: list[str] = []

    async def pay(invoice: dict[str, Any]) -> None:
        txids.append(await world.pay_token(invoice["address"], mined=False))

    await world.in_one_block(pay(shown), pay(hidden))
    # The answer is not empty (the other transfer is there), yet incomplete: all or nothing.
    await world.assert_step_fails_untouched()
    assert await world.payments(shown) == [] and await world.payments(hidden) == []

    world.proxy.pass_through()
    await world.sync()
    await world.assert_credited_once(shown, txids[0])
    await world.assert_credited_once(hidden, txids[1])


async def test_hidden_logs_fail_over_to_a_healthy_node(world_with_backup: World) -> None:
    world = world_with_backup
    invoice = await world.usdt_invoice()
    world.proxy.empty_logs()
    txid = await world.pay_token(invoice["address"])
    assert world.proxy_in_favour()
    await world.step()  # no error: the scan restarted on the healthy node
    assert world.proxy.calls["eth_getLogs"] >= 1
    await world.assert_credited_once(invoice, txid)


async def test_a_transfer_to_someone_else_cannot_be_passed_off_as_a_payment(
    world: World,
) -> None:
    invoice = await world.usdt_invoice()
    world.proxy.redirect_transfers(invoice["address"])
    await world.pay_token(world.node.accounts[2].address)  # a real transfer, to a stranger
    await world.assert_step_fails_untouched()
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    assert await world.payments(invoice) == []


async def test_a_bloom_false_positive_does_not_stall_an_honest_node(world: World) -> None:
    # One block with an Approval from the whitelisted USDT and a Transfer from another token
    # to a watched address: the bloom holds both the contract and the Transfer topic, yet
    # there is no whitelisted Transfer. An honest empty answer must be accepted.
    invoice = await world.usdt_invoice()
    lookalike = await world.node.deploy_token("USDT", 6, holder=world.payer)
    approve = encode_call(
        "approve(address,uint256)", ["address", "uint256"], [invoice["address"], 7]
    )
    height = await world.in_one_block(
        world.call_token(world.usdt.contract, approve, mined=False),
        world.pay_token(invoice["address"], contract=lookalike.contract, mined=False),
    )
    block = await world.node.rpc("eth_getBlockByNumber", hex(height), False)
    bloom = bytes.fromhex(block["logsBloom"][2:])
    contract = bytes.fromhex(world.usdt.contract[2:])
    assert may_hold_log(bloom, [contract], bytes.fromhex(TRANSFER_TOPIC[2:]))

    await world.sync()
    assert (await world.cursor()).height == height
    assert await world.payments(invoice) == []


# -- a node that drops connections ----------------------------------------------------------


async def test_dropped_connections_and_502s_change_nothing(world: World) -> None:
    invoices = [await world.eth_invoice(), await world.usdt_invoice()]
    txids = [
        await world.pay_eth(invoices[0]["address"]),
        await world.pay_token(invoices[1]["address"]),
    ]

    for how in ("close", "502"):
        world.proxy.drop(how=how)
        await world.assert_step_fails_untouched()
    # Blocks and logs were read, then the receipts call dies: the whole step is void.
    world.proxy.drop(["eth_getTransactionReceipt"])
    await world.assert_step_fails_untouched()
    assert world.proxy.calls["eth_getBlockByNumber"] >= 1
    for invoice in invoices:
        assert await world.payments(invoice) == []

    # A flaky node: a third of the requests dropped, at seeded random points of the step.
    world.proxy.drop(rate=0.35)
    await world.node.mine(3)
    failures = 0
    for _ in range(200):
        before = await world.cursor()
        try:
            outcome = await world.step()
        except NodeUnavailable:
            failures += 1
            after = await world.cursor()
            assert (after.height, after.hash) == (before.height, before.hash)
            continue
        if outcome.at_tip:
            break
    assert outcome.at_tip and failures > 0
    for invoice, txid in zip(invoices, txids, strict=True):
        await world.assert_credited_once(invoice, txid)


async def test_dropped_connections_fail_over_to_a_healthy_node(world_with_backup: World) -> None:
    world = world_with_backup
    invoices = [await world.eth_invoice(), await world.usdt_invoice()]
    txids = [
        await world.pay_eth(invoices[0]["address"]),
        await world.pay_token(invoices[1]["address"]),
    ]
    world.proxy.drop(how="502")
    await world.node.mine(2)
    assert world.proxy_in_favour()
    await world.sync()
    assert world.proxy.dropped >= 1  # the proxy was asked first, and failed
    assert (await world.cursor()).height == await world.node.tip()
    for invoice, txid in zip(invoices, txids, strict=True):
        await world.assert_credited_once(invoice, txid)


# -- a node without receipts ----------------------------------------------------------------


async def test_a_null_receipt_holds_the_cursor_before_the_payment(world: World) -> None:
    invoices = [await world.eth_invoice(), await world.usdt_invoice()]
    world.proxy.null_receipts()
    txids = [
        await world.pay_eth(invoices[0]["address"]),
        await world.pay_token(invoices[1]["address"]),
    ]
    await world.assert_step_fails_untouched()
    assert world.proxy.calls["eth_getTransactionReceipt"] >= 1
    for invoice in invoices:
        assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    for invoice, txid in zip(invoices, txids, strict=True):
        await world.assert_credited_once(invoice, txid)


async def test_a_null_receipt_fails_over_to_a_healthy_node(world_with_backup: World) -> None:
    world = world_with_backup
    invoice = await world.usdt_invoice()
    world.proxy.null_receipts()
    txid = await world.pay_token(invoice["address"])
    assert world.proxy_in_favour()
    await world.sync()
    assert world.proxy.calls["eth_getTransactionReceipt"] >= 1
    await world.assert_credited_once(invoice, txid)


# -- a node that lies about blocks ----------------------------------------------------------


async def test_a_forged_parent_hash_credits_nothing_from_the_block(world: World) -> None:
    invoice = await world.eth_invoice()
    before = await world.cursor()
    txid = await world.pay_eth(invoice["address"])
    paid_in = await world.node.tip()
    world.proxy.lie(paid_in, "parentHash")
    for _ in range(3):
        await world.step_or_fail()
        assert await world.highest_stored_block() < paid_in
        await world.assert_only_real_blocks_stored()
    assert (await world.cursor()).hash == before.hash
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.node.mine(1)
    await world.sync()
    await world.assert_credited_once(invoice, txid)


@pytest.mark.parametrize("pay", ["eth", "usdt"])
async def test_a_forged_block_hash_credits_nothing_from_the_block(world: World, pay: str) -> None:
    invoice = await (world.eth_invoice() if pay == "eth" else world.usdt_invoice())
    txid = await (world.pay_eth if pay == "eth" else world.pay_token)(invoice["address"])
    paid_in = await world.node.tip()
    # Told consistently: transactions, receipts and logs all name the forged hash.
    world.proxy.lie(paid_in, "hash")
    await world.assert_step_fails_untouched()
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.node.mine(1)
    await world.sync()
    await world.assert_credited_once(invoice, txid)
    await world.assert_only_real_blocks_stored()


async def test_a_forged_hash_of_an_empty_block_is_never_stored(world: World) -> None:
    invoice = await world.eth_invoice()
    await world.node.mine(1)
    forged_at = await world.node.tip()
    txid = await world.pay_eth(invoice["address"])
    world.proxy.lie(forged_at, "hash")
    for _ in range(3):
        await world.step_or_fail()
        assert (await world.cursor()).height < forged_at
        await world.assert_only_real_blocks_stored()
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    await world.assert_credited_once(invoice, txid)


async def test_a_forged_hash_of_the_cursor_block_moves_nothing(world: World) -> None:
    invoice = await world.shop.invoice(
        amount="1", currency="ETH", network=NETWORK, required_confirmations=1
    )
    txid = await world.pay_eth(invoice["address"])
    await world.sync()
    cursor = await world.cursor()
    [paid] = await world.payments(invoice)
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"

    # The node now says another block stands where our cursor's block (the one holding the
    # settled payment) is, and tells it consistently: a reorg claim on one node's word, with
    # a hash its own header contradicts.
    world.proxy.lie(cursor.height, "hash")
    for _ in range(3):
        await world.step_or_fail()
        now = await world.cursor()
        assert (now.height, now.hash) == (cursor.height, cursor.hash)
        await world.assert_only_real_blocks_stored()
    assert await world.payments(invoice) == [paid]

    world.proxy.pass_through()
    await world.node.mine(1)
    await world.sync()
    await world.assert_credited_once(invoice, txid)
    assert (await world.shop.fetch(invoice["id"]))["status"] == "settled"


# -- the header check itself ----------------------------------------------------------------


@pytest.mark.parametrize("hardfork", ["berlin", "london", "shanghai", "cancun", "prague"])
def test_block_hashes_verify_under_every_header_layout(
    anvil: AnvilNode, tmp_path: Path, hardfork: str
) -> None:
    # Each fork appended header fields; a wrong layout would stall the tracker on real chains.
    binary = find_anvil()
    assert binary is not None  # the `anvil` fixture skipped otherwise
    port = free_port()
    log = (tmp_path / "anvil.log").open("wb")
    process = subprocess.Popen(
        [binary, "--silent", "--port", str(port), "--hardfork", hardfork],
        env={**os.environ, "HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            def rpc(method: str, *params: Any) -> Any:
                for _ in range(200):
                    try:
                        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                        return http.post("/", json=body).json()["result"]
                    except httpx.TransportError:
                        time.sleep(0.05)  # still starting
                raise AssertionError(f"anvil --hardfork {hardfork} did not answer")

            payer, payee = anvil.accounts[1].address, anvil.accounts[2].address
            # A legacy gas price works on every fork, so the block has a transaction and receipt.
            tx = {"from": payer, "to": payee, "value": "0x1", "gasPrice": hex(10**10)}
            rpc("eth_sendTransaction", tx)
            for number in ("0x0", "latest"):
                block = rpc("eth_getBlockByNumber", number, False)
                assert header_hash(block) == block["hash"], (hardfork, number)
                check_block_hash(block, "anvil")
                with pytest.raises(BadNodeAnswer):
                    check_block_hash({**block, "parentHash": forged(block["parentHash"])}, "x")
    finally:
        process.terminate()
        process.wait(timeout=10)
