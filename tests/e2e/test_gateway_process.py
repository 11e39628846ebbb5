"""The gateway as it runs for real: API on a TCP port, tracker following anvil over WebSocket,
dispatcher sending signed webhooks to a flaky receiver — all in one event loop, nothing stepped
by hand. Then the tracker as a separate OS process, killed with SIGKILL mid-stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.bootstrap import build_container
from chaingate.config import NetworkConfig, Settings
from chaingate.entrypoints.runtime import serve
from tests.support.anvil import AnvilNode
from tests.support.gateway import running_gateway
from tests.support.net import free_port
from tests.support.webhook_receiver import Receiver, fail_first

pytestmark = pytest.mark.anvil
ETH = 10**18
REPO = Path(__file__).resolve().parents[2]


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """Written from the README's recipe, independently of the gateway's own code."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts["v1"])


async def wait_for(predicate: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


async def test_flaky_webhook_receiver_gets_every_event_once_per_id(
    anvil_isolated: AnvilNode, clean_database_url: str, receiver: Receiver
) -> None:
    node = anvil_isolated
    port = free_port()
    network = node.network(required_confirmations=2, start_block=await node.tip())
    settings = Settings(
        database_url=clean_database_url,
        networks=[network],
        dev_mode=True,
        secret_key="e2e-secret",
        api_port=port,
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.2,
    )
    container = build_container(settings)
    await upgrade_to_head(container.db.engine)
    stop, ready = asyncio.Event(), asyncio.Event()
    runtime = asyncio.ensure_future(serve(container, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
        from chaingate.services.merchants import create_merchant
        from tests.support.gateway import MERCHANT_MNEMONICS

        async with container.db.uow() as uow:
            _, key = await create_merchant(uow, "E2E shop", container.clock.now())
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as api:
            xpub = account_xpub_from_mnemonic(MERCHANT_MNEMONICS[0])
            assert (
                await api.post("/v1/wallets", json={"network": "anvil", "xpub": xpub})
            ).status_code == 201
            hook = await api.post(
                "/v1/webhooks", json={"url": receiver.route("/hook", fail_first(2, 503))}
            )
            assert hook.status_code == 201, hook.text
            secret = hook.json()["secret"]
            invoice = (
                await api.post(
                    "/v1/invoices", json={"amount": "0.2", "currency": "ETH", "network": "anvil"}
                )
            ).json()
            await node.rpc(
                "eth_sendTransaction",
                {
                    "from": node.accounts[1].address,
                    "to": invoice["address"],
                    "value": hex(ETH // 5),
                },
            )

            async def settled() -> bool:
                await node.mine(1)
                return (await api.get(f"/v1/invoices/{invoice['id']}")).json()[
                    "status"
                ] == "settled"

            await wait_for(settled, 30, "the invoice to settle")
            events = (await api.get("/v1/events")).json()["data"]

            async def all_delivered() -> bool:
                per_id = Counter(r.event_id for r in receiver.at("/hook"))
                return all(per_id[e["id"]] >= 3 for e in events)

            await wait_for(all_delivered, 30, "every event to get through")
            await asyncio.sleep(0.5)  # room for a wrong extra attempt to show up

        types = [e["type"] for e in events]
        assert types == [
            "invoice.created",
            "invoice.payment_received",
            "invoice.processing",
            "invoice.settled",
        ]
        requests = receiver.at("/hook")
        per_id = Counter(r.event_id for r in requests)
        assert per_id == {e["id"]: 3 for e in events}  # two 503s, then the 200: no more
        for request in requests:
            body = json.loads(request.body)
            assert body["id"] == request.event_id
            assert request.headers["chaingate-event-type"] == body["type"]
            assert verify_signature(secret, request.headers["chaingate-signature"], request.body)
        bodies = {r.event_id: set() for r in requests}  # type: dict[str, set[bytes]]
        for request in requests:
            bodies[request.event_id].add(request.body)
        assert all(len(b) == 1 for b in bodies.values())  # retries resend the same bytes
        deliveries = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as api:
            endpoint_id = hook.json()["id"]
            deliveries = (await api.get(f"/v1/webhooks/{endpoint_id}/deliveries")).json()["data"]
        assert {d["status"] for d in deliveries} == {"succeeded"}
        assert all([a["status_code"] for a in d["attempts"]] == [503, 503, 200] for d in deliveries)
    finally:
        stop.set()
        await asyncio.wait_for(runtime, 20)


def _start_tracker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "chaingate.entrypoints.cli", "worker", "tracker"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )


async def test_tracker_killed_mid_stream_misses_and_duplicates_nothing(
    anvil_isolated: AnvilNode, clean_database_url: str, tmp_path: Path
) -> None:
    node = anvil_isolated
    await node.mine(3)
    network: NetworkConfig = node.network(
        required_confirmations=2,
        start_block=await node.tip(),
        scan_batch_blocks=3,
        ws_url=None,
        poll_interval_seconds=0.05,
    )
    networks_file = tmp_path / "networks.toml"
    networks_file.write_text(
        f'[networks.anvil]\nchain_id = {network.chain_id}\nrpc_urls = ["{node.rpc_url}"]\n'
        f"required_confirmations = 2\nstart_block = {network.start_block}\n"
        "scan_batch_blocks = 3\npoll_interval_seconds = 0.05\n"
    )
    env = {
        **os.environ,
        "CHAINGATE_DATABASE_URL": clean_database_url,
        "CHAINGATE_NETWORKS_FILE": str(networks_file),
        "CHAINGATE_SECRET_KEY": "k",
    }
    rng = random.Random(20261122)
    log = tmp_path / "tracker.log"
    async with running_gateway(clean_database_url, [network]) as gateway:
        shop = await gateway.merchant()
        invoices = [
            await shop.invoice(amount=f"0.{i + 1:02d}", currency="ETH", network="anvil")
            for i in range(12)
        ]
        kills = 0
        process = _start_tracker(env, log)
        try:
            for i, invoice in enumerate(invoices):
                await node.rpc(
                    "eth_sendTransaction",
                    {
                        "from": node.accounts[1].address,
                        "to": invoice["address"],
                        "value": hex((i + 1) * ETH // 100),
                    },
                )
                await node.mine(rng.randint(0, 2))
                await asyncio.sleep(rng.uniform(0.0, 0.4))
                if rng.random() < 0.7:
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    kills += 1
                    process = _start_tracker(env, log)
            await node.mine(3)

            async def all_settled() -> bool:
                states = [(await shop.fetch(inv["id"]))["status"] for inv in invoices]
                return all(s == "settled" for s in states)

            await wait_for(all_settled, 60, "every invoice to settle after the kills")
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
