"""A node that makes payments up inside real blocks: a real anvil behind a lying JSON-RPC proxy
(tests/support/rpc_proxy.py `Forgery`), the real tracker, real SQLite and PostgreSQL.

The blocks keep their real hashes and headers; the liar appends a signed-but-never-sent
transfer with a status-1 receipt, shows other values, other token amounts or extra Transfer
logs - the same in every answer. A tracker that trusted the node's JSON credited each of
these; the gateway rebuilds the header's transactionsRoot and receiptsRoot and credits
nothing of it. Where a block cannot be rebuilt (a transaction type it cannot encode), only a
second node's agreement lets a payment count.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address

from chaingate.adapters.chains.evm.client import EvmChainClient
from tests.support.anvil import AnvilNode
from tests.support.chain_contract import WatchList
from tests.support.evm_world import ETH, USDT, World, world_of
from tests.support.rpc_proxy import Forgery, made_up_transfer

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


async def latest_block(world: World) -> dict[str, Any]:
    block: dict[str, Any] = await world.node.rpc("eth_getBlockByNumber", "latest", False)
    return block


async def appended_transfer(world: World, to: str, wei: int) -> Forgery:
    """A real block (a real payment to a stranger in it) with a transfer of `wei` to `to`
    appended: signed by the payer with its next nonce, never sent."""
    await world.pay_eth(world.node.accounts[2].address, 10**15)
    block = await latest_block(world)
    payer = world.node.accounts[1]
    nonce = int(await world.node.rpc("eth_getTransactionCount", payer.address, "pending"), 16)
    made_up = made_up_transfer(
        payer.private_key,
        chain_id=world.node.chain_id,
        nonce=nonce,
        to=to,
        value=wei,
        base_fee=int(block["baseFeePerGas"], 16),
    )
    return Forgery(height=int(block["number"], 16), block_hash=block["hash"], extra_tx=made_up)


async def assert_unpaid(world: World, invoice: dict[str, Any]) -> None:
    seen = await world.shop.fetch(invoice["id"])
    assert (seen["status"], seen["amount_paid"], seen["payments"]) == ("new", "0", []), seen
    assert await world.node.rpc("eth_getBalance", invoice["address"], "latest") == "0x0"


# -- made-up transactions -------------------------------------------------------------------


async def test_a_transfer_appended_to_a_real_block_is_never_credited(world: World) -> None:
    invoice = await world.eth_invoice()
    world.proxy.forge(await appended_transfer(world, invoice["address"], ETH))
    await world.assert_step_fails_untouched(match="transactions of block .* not those its header")
    await assert_unpaid(world, invoice)

    world.proxy.pass_through()
    await world.sync()
    assert (await world.cursor()).height == await world.node.tip()
    await assert_unpaid(world, invoice)


async def test_an_appended_transfer_fails_over_to_an_honest_node(world_with_backup: World) -> None:
    world = world_with_backup
    invoice = await world.eth_invoice()
    world.proxy.forge(await appended_transfer(world, invoice["address"], ETH))
    assert world.proxy_in_favour()
    await world.sync()
    assert world.proxy.calls["eth_getBlockReceipts"] >= 1  # the liar was asked, and refused
    assert (await world.cursor()).height == await world.node.tip()
    await assert_unpaid(world, invoice)


async def test_a_real_payment_shown_larger_counts_only_as_paid(world: World) -> None:
    invoice = await world.eth_invoice()
    txid = await world.pay_eth(invoice["address"], ETH // 10)
    block = await latest_block(world)
    world.proxy.forge(
        Forgery(height=int(block["number"], 16), block_hash=block["hash"], tx_values={txid: ETH})
    )
    await world.assert_step_fails_untouched(match="is not its hash")
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert [(p["txid"], p["amount"]) for p in seen["payments"]] == [(txid, "0.1")]
    assert seen["amount_paid"] == "0.1" and seen["status"] != "settled"


@pytest.mark.parametrize("lie", ["larger_amount", "extra_log"])
async def test_token_logs_count_only_as_their_proven_receipt_holds_them(
    world: World, lie: str
) -> None:
    invoice = await world.usdt_invoice()  # 5 USDT due
    txid = await world.pay_token(invoice["address"], 1 * USDT)
    block = await latest_block(world)
    [log] = (await world.node.rpc("eth_getTransactionReceipt", txid))["logs"]
    index = int(log["logIndex"], 16)
    height = int(block["number"], 16)
    if lie == "larger_amount":
        forgery = Forgery(height, block["hash"], log_amounts={(txid, index): 5 * USDT})
    else:  # the same Transfer again, for the rest: its bloom bits are all set already
        extra = {**log, "logIndex": hex(index + 1), "data": "0x" + (4 * USDT).to_bytes(32).hex()}
        forgery = Forgery(height, block["hash"], extra_logs={txid: (extra,)})
    world.proxy.forge(forgery)
    await world.assert_step_fails_untouched(match="receipts of block .* not those its header")
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    seen = await world.shop.fetch(invoice["id"])
    assert [(p["txid"], p["amount"]) for p in seen["payments"]] == [(txid, "1")]
    assert seen["amount_paid"] == "1" and seen["status"] != "settled"


# -- blocks that cannot be rebuilt: a second node must agree ----------------------------------


async def unknown_type_in_paying_block(
    world: World, invoice: dict[str, Any]
) -> tuple[str, Forgery]:
    """A block with a payment to `invoice` and a stranger's transfer, which the node shows as
    an L2 deposit (type 0x7e): the block's roots cannot be rebuilt."""
    txids: list[str] = []

    async def pay(to: str, wei: int) -> None:
        txids.append(await world.pay_eth(to, wei, mined=False))

    height = await world.in_one_block(
        pay(invoice["address"], ETH), pay(world.node.accounts[2].address, 10**15)
    )
    block = await world.node.rpc("eth_getBlockByNumber", hex(height), False)
    return txids[0], Forgery(height, block["hash"], tx_types={txids[1]: "0x7e"})


async def test_an_unprovable_block_credits_nothing_on_one_node(world: World) -> None:
    invoice = await world.eth_invoice()
    txid, forgery = await unknown_type_in_paying_block(world, invoice)
    world.proxy.forge(forgery)
    await world.assert_step_fails_untouched(match="needs a second node's agreement")
    assert await world.payments(invoice) == []

    world.proxy.pass_through()  # the same node, now with every type known: roots hold
    await world.sync()
    await world.assert_credited_once(invoice, txid)


async def test_an_unprovable_block_credits_when_a_second_node_agrees(
    world_with_backup: World,
) -> None:
    world = world_with_backup
    invoice = await world.eth_invoice()
    txid, forgery = await unknown_type_in_paying_block(world, invoice)
    world.proxy.forge(forgery)
    assert world.proxy_in_favour()
    await world.step()  # the proxy scanned; the honest node confirmed the payment
    assert world.proxy_in_favour()  # ... so the proxy was not failed over
    await world.assert_credited_once(invoice, txid)


async def test_an_unprovable_made_up_transfer_is_refused_by_the_second_node(
    world_with_backup: World,
) -> None:
    world = world_with_backup
    invoice = await world.eth_invoice()
    forgery = await appended_transfer(world, invoice["address"], ETH)
    block = await world.node.rpc("eth_getBlockByHash", forgery.block_hash, False)
    real = block["transactions"][0]
    # The liar also hides the block from the roots: one of its real transactions shown as a
    # deposit. The honest second node does not confirm the made-up transfer.
    world.proxy.forge(
        Forgery(forgery.height, forgery.block_hash, forgery.extra_tx, tx_types={real: "0x7e"})
    )
    await world.sync()
    assert (await world.cursor()).height == await world.node.tip()
    await assert_unpaid(world, invoice)


@pytest.mark.parametrize("backup", [False, True])
async def test_two_nodes_mode_needs_a_second_node_for_every_payment(
    anvil_isolated: AnvilNode, clean_database_url: str, backup: bool
) -> None:
    async with world_of(
        anvil_isolated, clean_database_url, healthy_backup=backup, payment_proof="two_nodes"
    ) as world:
        invoice = await world.eth_invoice()
        txid = await world.pay_eth(invoice["address"])
        if backup:
            await world.step()
            await world.assert_credited_once(invoice, txid)
        else:
            await world.assert_step_fails_untouched(match="only one node in rpc_urls")
            assert await world.payments(invoice) == []


# -- every transaction type anvil makes is proven -------------------------------------------


async def test_a_block_of_every_transaction_type_is_proven_and_credited(
    anvil_isolated: AnvilNode,
) -> None:
    # Legacy, EIP-2930, EIP-1559, EIP-4844 (with a blob: anvil commits its network form) and
    # EIP-7702 payments in ONE block; each is credited, from its recovered signer.
    node = anvil_isolated
    payer, delegator = (Account.from_key(node.accounts[i].private_key) for i in (3, 4))
    recipients = ["0x" + f"{n:02x}" * 20 for n in range(0xA1, 0xA6)]
    latest = await node.rpc("eth_getBlockByNumber", "latest", False)
    fee = {"maxFeePerGas": 4 * int(latest["baseFeePerGas"], 16) + 10**9}
    fee["maxPriorityFeePerGas"] = 10**9
    nonce = int(await node.rpc("eth_getTransactionCount", payer.address, "pending"), 16)
    delegator_nonce = int(
        await node.rpc("eth_getTransactionCount", delegator.address, "pending"), 16
    )
    authorization = delegator.sign_authorization(
        {"chainId": node.chain_id, "address": "0x" + "77" * 20, "nonce": delegator_nonce}
    )
    common = {"chainId": node.chain_id, "gas": 100_000}
    plans: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"gasPrice": fee["maxFeePerGas"]}, {}),
        ({"type": 1, "gasPrice": fee["maxFeePerGas"], "accessList": []}, {}),
        ({"type": 2, **fee}, {}),
        ({"type": 3, **fee, "maxFeePerBlobGas": 10**10}, {"blobs": [b"\x00" * 131_072]}),
        ({"type": 4, **fee, "authorizationList": [authorization]}, {}),
    ]
    await node.rpc("evm_setAutomine", False)
    try:
        for offset, ((fields, extra), to) in enumerate(zip(plans, recipients, strict=True)):
            tx = {**common, **fields, "nonce": nonce + offset, "to": to_checksum_address(to)}
            signed = payer.sign_transaction({**tx, "value": ETH + offset}, **extra)
            await node.rpc("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        await node.mine(1)
    finally:
        await node.rpc("evm_setAutomine", True)
    block = await node.rpc("eth_getBlockByNumber", "latest", True)
    assert [tx["type"] for tx in block["transactions"]] == ["0x0", "0x1", "0x2", "0x3", "0x4"]

    client = EvmChainClient(node.network())
    try:
        height = int(block["number"], 16)
        parent = await client.block_at(height - 1)
        result = await client.scan(height, height, parent, WatchList(set(recipients)))
    finally:
        await client.close()
    assert [(t.to_address, t.amount, t.from_address) for t in result.transfers] == [
        (to, ETH + offset, payer.address.lower()) for offset, to in enumerate(recipients)
    ]
