"""The tracker as a separate OS process on a real litecoind, SIGKILLed again and again while
payments arrive (in the mempool and in blocks): nothing missed, nothing counted twice. The
first payments are waited for until the worker's mempool polling has seen them unconfirmed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import params_for
from tests.support.gateway import MERCHANT_MNEMONICS, running_gateway
from tests.support.litecoind import LitecoindNode

REPO = Path(__file__).resolve().parents[2]
INVOICES = 12


def _start_tracker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "chaingate.entrypoints.cli", "worker", "tracker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


async def _wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_tracker_killed_mid_stream_misses_and_duplicates_nothing(
    litecoind_isolated: LitecoindNode, clean_database_url: str, tmp_path: Path
) -> None:
    node = litecoind_isolated
    network = node.network(
        name="ltc",
        required_confirmations=2,
        start_block=await node.tip(),
        scan_batch_blocks=3,
        poll_interval_seconds=0.05,
    )
    networks_file = tmp_path / "networks.toml"
    networks_file.write_text(
        "[networks.ltc]\n"
        'kind = "bitcoin"\nchain = "litecoin"\nchain_network = "regtest"\n'
        f"rpc_urls = {json.dumps(network.rpc_urls)}\n"
        f"rpc_user = {json.dumps(node.rpc_user)}\nrpc_password = {json.dumps(node.rpc_password)}\n"
        f"required_confirmations = 2\nstart_block = {network.start_block}\n"
        "scan_batch_blocks = 3\npoll_interval_seconds = 0.05\ntrack_mempool = true\n"
    )
    env = {
        **os.environ,
        "CHAINGATE_DATABASE_URL": clean_database_url,
        "CHAINGATE_NETWORKS_FILE": str(networks_file),
        "CHAINGATE_SECRET_KEY": "k",
    }
    rng = random.Random(20261207)
    log = tmp_path / "tracker.log"
    async with running_gateway(clean_database_url, [network]) as gateway:
        shop = await gateway.merchant(with_wallets=False)
        vpub = account_key_from_mnemonic(MERCHANT_MNEMONICS[0], params_for(network))
        answer = await shop.post("/v1/wallets", {"network": "ltc", "xpub": vpub})
        assert answer.status_code == 201, answer.text
        invoices = [
            await shop.invoice(amount=f"0.{i + 1:02d}", currency="LTC", network="ltc")
            for i in range(INVOICES)
        ]
        kills = 0
        process = _start_tracker(env, log)
        try:
            for i, invoice in enumerate(invoices):
                await node.pay(invoice["address"], (i + 1) * 1_000_000)
                if i < 3:
                    # The worker polls the mempool at the tip: seen before any block holds it.
                    async def unconfirmed(invoice_id: str = invoice["id"]) -> bool:
                        state = await shop.fetch(invoice_id)
                        return state["status"] == "processing" and all(
                            p["block_number"] is None for p in state["payments"]
                        )

                    await _wait_for(unconfirmed, 30, f"invoice {i} seen in the mempool")
                await node.mine(rng.randint(0, 2))
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                if rng.random() < 0.7:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    process = _start_tracker(env, log)
            await node.mine(3)

            async def all_settled() -> bool:
                states = [(await shop.fetch(inv["id"]))["status"] for inv in invoices]
                return all(s == "settled" for s in states)

            await _wait_for(all_settled, 90, "every invoice to settle after the kills")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert kills >= 5
        for i, invoice in enumerate(invoices):
            seen = await shop.fetch(invoice["id"])
            assert len(seen["payments"]) == 1, seen
            assert seen["amount_paid"] == f"0.{i + 1:02d}".rstrip("0")
            types = [e["type"] for e in await shop.events(invoice["id"])]
            assert types == [
                "invoice.created",
                "invoice.payment_received",
                "invoice.processing",
                "invoice.settled",
            ], types
