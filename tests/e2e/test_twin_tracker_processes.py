"""Two tracker processes (`chaingate worker tracker`, the plain command) on the same network and
the same PostgreSQL database while payments flow. Both wake on every new head and scan the
same blocks; the cursor's compare-and-set (a row lock on PostgreSQL: the second UPDATE waits,
then finds the cursor moved and matches nothing) lets one commit win and rolls the other back.
Every payment must be credited, none twice, and neither process may stumble over the other.

The in-process twin of this test is in tests/integration/test_payment_loop.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.anvil import AnvilNode
from tests.support.crash_run import NETWORK, make_plans
from tests.support.db_probe import DbProbe
from tests.support.gateway import MerchantHandle, running_gateway
from tests.support.gateway_process import (
    GatewaySetup,
    PlainProcess,
    log_tail,
    sigkill,
    start_plain,
    write_networks_file,
)
from tests.support.net import free_port
from tests.support.payer import Payer
from tests.support.reconcile import (
    check_event_counts,
    check_invoices_reconcile,
    check_payments_match_chain,
)

pytestmark = pytest.mark.anvil

SEED = int(os.environ.get("CHAINGATE_CRASH_SEED", "20261122"))
INVOICES = 12


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_tracker_processes_credit_every_payment_once(
    anvil_isolated: AnvilNode, clean_database_url: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    node = anvil_isolated
    usdt = await node.deploy_token("USDT", 6, holder=node.accounts[1].address)
    network = node.network(
        [usdt],
        required_confirmations=2,
        start_block=await node.tip(),
        scan_batch_blocks=2,
        poll_interval_seconds=0.05,
    )
    networks_file = write_networks_file(tmp_path / "networks.toml", [network])
    setups = [
        GatewaySetup(clean_database_url, networks_file, free_port(), tmp_path / f"tracker-{i}.log")
        for i in (1, 2)
    ]
    plans = make_plans(INVOICES, rng)
    payer = Payer(node, node.accounts[1].address, [usdt])
    probe = DbProbe(clean_database_url)
    trackers: list[PlainProcess] = []
    async with running_gateway(clean_database_url, [network]) as gateway:  # API only
        shop = await gateway.merchant()
        for plan in plans:
            view = await shop.invoice(**json.loads(plan.body))
            plan.invoice_id, plan.address = view["id"], view["address"]
        try:
            trackers = [start_plain(setup, "worker", "tracker") for setup in setups]
            await _both_following(trackers, setups)
            payments = [(plan, part) for plan in plans for part in plan.parts]
            rng.shuffle(payments)
            for plan, amount in payments:
                assert plan.address is not None
                await payer.send(plan.address, plan.currency, amount)
                if rng.random() < 0.3:
                    await node.mine(rng.randint(1, 3))  # a batch both trackers race for
                await asyncio.sleep(rng.uniform(0.0, 0.05))
            await node.mine(2)  # every payment reaches its 2 confirmations
            await _settled(probe, node, len(payments), setups)

            for process, setup in zip(trackers, setups, strict=True):
                assert process.alive(), f"a tracker died:\n{log_tail(setup.log)}"
                log = setup.log.read_text()
                assert "Traceback" not in log and "unexpected error" not in log, log_tail(setup.log)
            await check_payments_match_chain(probe, plans, payer.sent)
            await check_invoices_reconcile(probe, plans)
            check_event_counts(plans, payer.sent, await _events(shop))
            tip = await node.rpc("eth_getBlockByNumber", "latest", False)
            assert await probe.cursor(NETWORK) == (int(tip["number"], 16), tip["hash"])
            print(f"\ntwo trackers: {len(plans)} invoices, {len(payments)} payments, seed {SEED}")
        finally:
            for process in trackers:
                sigkill(process)
            await probe.close()


async def _both_following(trackers: list[PlainProcess], setups: list[GatewaySetup]) -> None:
    """Until each process has verified the chain and subscribed to new heads."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process, setup in zip(trackers, setups, strict=True):
            assert process.alive(), f"a tracker died at start:\n{log_tail(setup.log)}"
        if all("newHeads subscription open" in s.log.read_text() for s in setups):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the trackers did not start within 60 s")


async def _settled(
    probe: DbProbe, node: AnvilNode, expected: int, setups: list[GatewaySetup]
) -> None:
    deadline = time.monotonic() + 60
    state = ""
    while time.monotonic() < deadline:
        cursor, tip = await probe.cursor(NETWORK), await node.tip()
        rows = await probe.rows("payments")
        done = len(rows) >= expected and all(r["status"] != "pending" for r in rows)
        if cursor is not None and cursor[0] == tip and done:
            return
        state = f"cursor {cursor}, tip {tip}, {len(rows)} rows for {expected} payments"
        await asyncio.sleep(0.1)
    raise AssertionError(f"not settled after 60 s: {state}\n{log_tail(setups[0].log)}")


async def _events(shop: MerchantHandle) -> list[dict[str, Any]]:
    answer = await shop.get("/v1/events", limit=500)
    assert answer.status_code == 200 and not answer.json()["has_more"], answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data
