"""Bitcoin-family detection latency: from the block holding a payment to `invoice.settled`.

A private litecoind (regtest), the whole gateway as `chaingate run` in its own process (API +
tracker with mempool polling + expirer + dispatcher, SQLite, required_confirmations = 1,
polling: this node has no ZMQ), and a webhook receiver in this process. For each payment:
create an invoice over the API, pay it with `sendtoaddress` from the node's payer wallet, wait
until the gateway has seen it in the mempool (`invoice.processing` webhook), then mine one block
with `generatetoaddress`; t0 is the moment that call returns (the block exists), t1 the moment
the `invoice.settled` webhook has arrived.

Baseline, same block, same moment: a bare loop polling `getbestblockhash` + `getblock <hash> 1`
until the best block holds the payment — how soon a watcher with nothing else to do can know.
The event's `created_at` splits the gateway's time into detection (t0 -> tracker) and delivery
(tracker -> webhook).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Child,
    Row,
    free_port,
    latency_ms,
    options,
    print_rows,
    python_module,
    row,
    scratch_database,
    workdir,
    write_result,
)
from bench.gateway import add_webhook, environment, networks_toml
from bench.receiver import Receiver
from bench.tracker_catchup_bitcoin import network, prepare
from chaingate.entrypoints.dev.litecoind import (
    LitecoindProcess,
    find_litecoind,
    fund_wallets,
    start_litecoind,
)
from chaingate.entrypoints.workers.dispatcher import POLL_SECONDS

NAME = "detection_latency_bitcoin"
POLL_INTERVAL = 0.5
WARMUP_PAYMENTS = 2


class Node:
    """Async JSON-RPC to litecoind for the measured part (the receiver shares this loop)."""

    def __init__(self, node: LitecoindProcess) -> None:
        self._node = node
        self._http = httpx.AsyncClient(timeout=30, trust_env=False)

    async def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        url = self._node.wallet_url(wallet) if wallet else self._node.rpc_url
        body = {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}
        answer = await self._http.post(
            url,
            content=json.dumps(body),
            auth=(self._node.rpc_user, self._node.rpc_password),
        )
        decoded = json.loads(answer.content, parse_float=Decimal)
        if decoded.get("error"):
            raise RuntimeError(f"{method}: {decoded['error']}")
        return decoded["result"]

    async def close(self) -> None:
        await self._http.aclose()


async def _bare_poll(node: Node, txid: str) -> None:
    while True:
        best = await node.rpc("getbestblockhash")
        if txid in (await node.rpc("getblock", best, 1))["tx"]:
            return


async def _pay_once(
    node: Node, api: httpx.AsyncClient, receiver: Receiver, miner: str, network_name: str
) -> dict[str, float]:
    answer = await api.post(
        "/v1/invoices", json={"amount": "0.01", "currency": "LTC", "network": network_name}
    )
    if answer.status_code != 201:
        raise RuntimeError(f"invoice creation failed: {answer.status_code} {answer.text}")
    invoice = answer.json()
    processing = receiver.expect("invoice.processing", invoice["id"])
    settled = receiver.expect("invoice.settled", invoice["id"])
    txid = await node.rpc("sendtoaddress", invoice["address"], "0.01", wallet="payer")
    await asyncio.wait_for(processing, 60)  # seen in the mempool
    # Mine at a random point of the tracker's poll, as a block found by the network would be.
    await asyncio.sleep(random.uniform(0.0, POLL_INTERVAL))
    await node.rpc("generatetoaddress", 1, miner)
    t0, t0_wall = time.monotonic(), time.time()
    await _bare_poll(node, txid)
    baseline = time.monotonic() - t0
    arrival = await asyncio.wait_for(settled, 60)
    applied = datetime.fromisoformat(arrival.event["created_at"].replace("Z", "+00:00"))
    return {
        "gateway": arrival.monotonic - t0,
        "baseline": baseline,
        "detection": applied.timestamp() - t0_wall,
        "delivery": arrival.wall - applied.timestamp(),
    }


async def _run(payments: int, tmp: Path) -> dict[str, Any]:
    process = start_litecoind(find_litecoind(), tmp / "litecoind")
    receiver = Receiver()
    node = Node(process)
    try:
        fund_wallets(process)
        miner = process.call("getnewaddress", wallet="miner")
        receiver_port, api_port = free_port(), free_port()
        await receiver.start(receiver_port)
        async with scratch_database("sqlite", NAME, tmp) as url:
            config = network(process, None, poll_interval_seconds=POLL_INTERVAL)
            container, shop = await prepare(url, config)
            await add_webhook(container, shop, f"http://127.0.0.1:{receiver_port}/hook")
            gateway_settings = container.settings
            await container.close()
            networks_file = tmp / "networks.toml"
            networks_file.write_text(networks_toml(config))
            env = environment(gateway_settings, networks_file, api_port)
            argv = python_module("chaingate.entrypoints.cli", "run")
            with Child(argv, tmp / "gateway.log", env=env) as gateway:
                gateway.wait_http(f"http://127.0.0.1:{api_port}/healthz")
                base_url = f"http://127.0.0.1:{api_port}"
                auth = {"Authorization": f"Bearer {shop.api_key}"}
                async with httpx.AsyncClient(
                    base_url=base_url, headers=auth, trust_env=False, timeout=30
                ) as api:
                    for _ in range(WARMUP_PAYMENTS):  # also proves the cursor is placed
                        await _pay_once(node, api, receiver, miner, config.name)
                    cpu_before, started = gateway.cpu_seconds(), time.monotonic()
                    samples = [
                        await _pay_once(node, api, receiver, miner, config.name)
                        for _ in range(payments)
                    ]
                    elapsed = time.monotonic() - started
                    gateway_cpu = (gateway.cpu_seconds() - cpu_before) / elapsed
    finally:
        await node.close()
        await receiver.close()
        process.stop()
    return {
        "payments": payments,
        "poll_interval_seconds": POLL_INTERVAL,
        "dispatcher_poll_seconds": POLL_SECONDS,
        "gateway": latency_ms([s["gateway"] for s in samples]),
        "baseline_bare_poll": latency_ms([s["baseline"] for s in samples]),
        "detection_part": latency_ms([s["detection"] for s in samples]),
        "delivery_part": latency_ms([s["delivery"] for s in samples]),
        "gateway_cpu_share": round(gateway_cpu, 3),
        "webhooks_received": receiver.received,
    }


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    with workdir(NAME) as scratch:
        details = await _run(10 if quick else 50, Path(scratch))
    gateway, baseline = details["gateway"], details["baseline_bare_poll"]
    summary = [
        row(NAME, f"block -> settled webhook {q}", gateway[f"{q}_ms"], "ms",
            f"bare getblock poll {q}", baseline[f"{q}_ms"])
        for q in ("p50", "p99", "max")
    ]  # fmt: skip
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)
    for part in ("detection_part", "delivery_part"):
        print(part, details[part])


if __name__ == "__main__":
    main()
