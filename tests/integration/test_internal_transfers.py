"""ETH paid through a contract's internal call is credited, on real anvil and its tracers.

Contracts (contracts/test/InternalPayments.sol, artifacts in tests/support/contracts): a
constructor that CALLs the invoice address, a Safe-like forwarder (one payment, and a batch
payout), and calls that revert around a payment. A lying tracer in front of anvil
(tests/support/rpc_proxy.py) claims a contract paid an invoice inside a real, successful
transaction: the recipient's state-proven balance contradicts it; where the node keeps no
state, only a second node's agreement lets an internal payment count.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode

from chaingate.adapters.chains.evm.wallet_ops import encode_call
from tests.support.anvil import AnvilNode
from tests.support.evm_world import ETH, NETWORK, USDT, World, world_of
from tests.support.rpc_proxy import Forgery

pytestmark = pytest.mark.anvil

CONTRACTS = Path(__file__).resolve().parents[1] / "support" / "contracts"
QUARTER = ETH // 4
GAS = 300_000  # explicit: an estimate would refuse the reverting calls, or starve a try/catch


def creation_code(
    contract: str, types: list[str] | None = None, args: list[Any] | None = None
) -> str:
    artifact = json.loads((CONTRACTS / f"{contract}.json").read_text())
    return str(artifact["bytecode"]) + encode(types or [], args or []).hex()


async def deploy(world: World, contract: str, *, value: int = 0) -> str:
    txid = await world.send({"data": creation_code(contract), "value": hex(value)}, mined=True)
    receipt = await world.node.rpc("eth_getTransactionReceipt", txid)
    assert receipt["status"] == "0x1"
    return str(receipt["contractAddress"])


async def call(world: World, contract: str, data: bytes, *, value: int = 0) -> str:
    tx = {"to": contract, "data": "0x" + data.hex(), "value": hex(value), "gas": hex(GAS)}
    return await world.send(tx, mined=True)


async def quarter_invoice(world: World) -> dict[str, Any]:
    return await world.shop.invoice(amount="0.25", currency="ETH", network=NETWORK)


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


async def assert_paid_by_contract(
    world: World, invoice: dict[str, Any], txid: str, position: str, payer: str
) -> None:
    seen = await world.shop.fetch(invoice["id"])
    assert seen["status"] == "settled", seen
    [payment] = seen["payments"]
    assert (payment["txid"], payment["amount"]) == (txid, invoice["amount"])
    assert (payment["output"], payment["log_index"], payment["from"]) == (position, None, payer)


# -- payments by contracts --------------------------------------------------------------------


@pytest.mark.parametrize("tracer", ["call_tracer", "parity"])
async def test_a_constructor_that_pays_the_invoice_is_credited(
    anvil_isolated: AnvilNode, clean_database_url: str, tracer: str
) -> None:
    async with world_of(
        anvil_isolated, clean_database_url, healthy_backup=False, internal_transfers=tracer
    ) as world:
        invoice = await quarter_invoice(world)
        code = creation_code("ConstructorPayer", ["address"], [invoice["address"]])
        txid = await world.send({"data": code, "value": hex(QUARTER)}, mined=True)
        contract = (await world.node.rpc("eth_getTransactionReceipt", txid))["contractAddress"]
        await world.node.mine(1)
        await world.sync()
        await assert_paid_by_contract(world, invoice, txid, "trace:0", contract)
        await world.sync()  # a rescan of the same blocks credits nothing twice
        await world.assert_credited_once(invoice, txid)


async def test_a_forwarders_execute_and_batch_payout_are_credited(world: World) -> None:
    forwarder = await deploy(world, "Forwarder", value=ETH)
    single, first, second = [await quarter_invoice(world) for _ in range(3)]
    execute = encode_call(
        "execute(address,uint256,bytes)",
        ["address", "uint256", "bytes"],
        [single["address"], QUARTER, b""],
    )
    # Sent by the payer, who deployed the forwarder and owns it.
    paid_one = await call(world, forwarder, execute)
    batch = encode_call(
        "payMany(address[],uint256)",
        ["address[]", "uint256"],
        [[first["address"], second["address"]], QUARTER],
    )
    paid_both = await call(world, forwarder, batch)
    await world.node.mine(1)
    await world.sync()
    await assert_paid_by_contract(world, single, paid_one, "trace:0", forwarder)
    await assert_paid_by_contract(world, first, paid_both, "trace:0", forwarder)
    await assert_paid_by_contract(world, second, paid_both, "trace:1", forwarder)


async def test_payments_undone_by_a_revert_credit_nothing(world: World) -> None:
    payer_contract = await deploy(world, "RevertingPayer")
    inside, failed, kept = [await quarter_invoice(world) for _ in range(3)]

    def paying(signature: str, to: str, *extra: int) -> bytes:
        types = ["address", *("uint256" for _ in extra)]
        return encode_call(signature, types, [to, *extra])

    # A successful CALL inside a call that reverted (the transaction itself succeeds).
    undone = await call(
        world, payer_contract, paying("payInsideRevertedCall(address)", inside["address"]),
        value=QUARTER,
    )  # fmt: skip
    # The whole transaction fails.
    reverted = await call(
        world, payer_contract, paying("payThenRevert(address)", failed["address"]),
        value=QUARTER,
    )  # fmt: skip
    # A failed call with value first (ordinal 0), then a real payment (ordinal 1).
    paid = await call(
        world, payer_contract,
        paying("failedCallThenPay(address,uint256)", kept["address"], QUARTER),
        value=2 * QUARTER,
    )  # fmt: skip
    receipts = [await world.node.rpc("eth_getTransactionReceipt", t) for t in (undone, reverted)]
    assert [r["status"] for r in receipts] == ["0x1", "0x0"]
    await world.node.mine(1)
    await world.sync()
    assert await world.payments(inside) == [] and await world.payments(failed) == []
    assert await world.node.rpc("eth_getBalance", inside["address"], "latest") == "0x0"
    await assert_paid_by_contract(world, kept, paid, "trace:1", payer_contract)


# -- a lying tracer ---------------------------------------------------------------------------


async def invented_payment(world: World, invoice: dict[str, Any]) -> Forgery:
    """A real, successful token transfer to a stranger, traced as if the token contract had
    also paid `invoice` 0.25 ETH."""
    txid = await world.pay_token(world.node.accounts[2].address, USDT)
    block = await world.node.rpc("eth_getBlockByNumber", "latest", False)
    made_up = {
        "type": "CALL",
        "from": world.usdt.contract,
        "to": invoice["address"],
        "value": hex(QUARTER),
        "gas": "0x0",
        "gasUsed": "0x0",
        "input": "0x",
    }
    return Forgery(int(block["number"], 16), block["hash"], extra_calls={txid: (made_up,)})


async def test_an_invented_internal_payment_is_refused_by_the_proven_balance(
    world: World,
) -> None:
    invoice = await quarter_invoice(world)
    world.proxy.forge(await invented_payment(world, invoice))
    await world.assert_step_fails_untouched(match="proven balance grew by 0")
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    assert await world.payments(invoice) == []


async def test_without_state_an_internal_payment_needs_a_second_node(world: World) -> None:
    invoice = await quarter_invoice(world)
    code = creation_code("ConstructorPayer", ["address"], [invoice["address"]])
    txid = await world.send({"data": code, "value": hex(QUARTER)}, mined=True)
    world.proxy.stateless()
    await world.assert_step_fails_untouched(match="needs a second node's agreement")
    assert await world.payments(invoice) == []

    world.proxy.pass_through()
    await world.sync()
    await world.assert_credited_once(invoice, txid)


async def test_without_state_a_second_node_confirms_a_real_internal_payment(
    world_with_backup: World,
) -> None:
    world = world_with_backup
    invoice = await quarter_invoice(world)
    code = creation_code("ConstructorPayer", ["address"], [invoice["address"]])
    txid = await world.send({"data": code, "value": hex(QUARTER)}, mined=True)
    world.proxy.stateless()
    assert world.proxy_in_favour()
    await world.step()
    assert world.proxy_in_favour()  # the proxy's scan stood, with the second node's word
    await world.assert_credited_once(invoice, txid)


async def test_without_state_a_second_node_refuses_an_invented_internal_payment(
    world_with_backup: World,
) -> None:
    world = world_with_backup
    invoice = await quarter_invoice(world)
    world.proxy.forge(await invented_payment(world, invoice))
    world.proxy.stateless()
    await world.sync()
    assert (await world.cursor()).height == await world.node.tip()
    assert await world.payments(invoice) == []
    assert world.proxy.calls["debug_traceBlockByHash"] >= 1
