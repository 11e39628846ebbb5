"""Detection latency: from a payment's receipt to the `invoice.settled` webhook.

anvil (automine: each transaction is mined into its own block at once), the whole gateway as
`chaingate run` in its own process (API + tracker + expirer + dispatcher, SQLite,
required_confirmations = 1, newHeads over WebSocket plus a short poll interval), and a webhook
receiver in this process. For each payment: create an invoice over the API, send its amount
with eth_sendTransaction from an unlocked anvil account, fetch the receipt; t0 is the moment
the receipt is in hand, t1 the moment the `invoice.settled` webhook has arrived.

Baseline, same payment, same moment: a bare loop polling eth_getBlockByNumber(full) for the
receipt's block until it holds the transaction — how soon a watcher with nothing else to do
can know. The event's `created_at` (the tracker's clock when it applied the block) splits the
gateway's time into detection (t0 -> tracker) and delivery (tracker -> webhook).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.chain import Anvil
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
from bench.gateway import (
    NETWORK,
    add_webhook,
    environment,
    network,
    networks_toml,
    prepared,
    settings,
)
from bench.receiver import Receiver
from chaingate.entrypoints.workers.dispatcher import IDLE_SECONDS

NAME = "detection_latency"
POLL_INTERVAL = 0.5
DISPATCHER_IDLE_SECONDS = IDLE_SECONDS
WARMUP_PAYMENTS = 2
AMOUNT_WEI = 10**16


class Node:
    """Async JSON-RPC to anvil for the measured part (the receiver shares this event loop)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._http = httpx.AsyncClient(timeout=30, trust_env=False)

    async def rpc(self, method: str, *params: Any) -> Any:
        answer = (
            await self._http.post(
                self._url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            )
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def close(self) -> None:
        await self._http.aclose()


async def _bare_poll(node: Node, block_number: str, txid: str) -> None:
    while True:
        block = await node.rpc("eth_getBlockByNumber", block_number, True)
        if block is not None and any(tx["hash"] == txid for tx in block["transactions"]):
            return


async def _pay_once(
    node: Node, api: httpx.AsyncClient, receiver: Receiver, payer: str
) -> dict[str, float]:
    answer = await api.post(
        "/v1/invoices", json={"amount": "0.01", "currency": "ETH", "network": NETWORK}
    )
    if answer.status_code != 201:
        raise RuntimeError(f"invoice creation failed: {answer.status_code} {answer.text}")
    invoice = answer.json()
    settled = receiver.expect("invoice.settled", invoice["id"])
    # The invoice.created delivery just restarted the dispatcher's idle pause: pay at a
    # random point of that pause, as a customer paying minutes later would.
    await asyncio.sleep(random.uniform(0.0, DISPATCHER_IDLE_SECONDS))
    transaction = {"from": payer, "to": invoice["address"], "value": hex(AMOUNT_WEI)}
    txid = await node.rpc("eth_sendTransaction", transaction)
    receipt = None
    while receipt is None:  # automine mines within milliseconds, not always before answering
        receipt = await node.rpc("eth_getTransactionReceipt", txid)
    t0, t0_wall = time.monotonic(), time.time()
    await _bare_poll(node, receipt["blockNumber"], txid)
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
    anvil = Anvil(tmp)
    receiver = Receiver()
    node = Node(anvil.rpc_url)
    try:
        receiver_port, api_port = free_port(), free_port()
        await receiver.start(receiver_port)
        async with scratch_database("sqlite", NAME, tmp) as url:
            config = network(
                anvil.rpc_url, ws_url=anvil.ws_url, poll_interval_seconds=POLL_INTERVAL
            )
            gateway_settings = settings(url, [config])
            container, shop = await prepared(gateway_settings)
            await add_webhook(container, shop, f"http://127.0.0.1:{receiver_port}/hook")
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
                    # The first payments also prove the tracker has placed its cursor.
                    for _ in range(WARMUP_PAYMENTS):
                        await _pay_once(node, api, receiver, anvil.accounts[1])
                    cpu_before, started = gateway.cpu_seconds(), time.monotonic()
                    samples = [
                        await _pay_once(node, api, receiver, anvil.accounts[1 + i % 9])
                        for i in range(payments)
                    ]
                    elapsed = time.monotonic() - started
                    gateway_cpu = (gateway.cpu_seconds() - cpu_before) / elapsed
    finally:
        await node.close()
        await receiver.close()
        anvil.close()
    return {
        "payments": payments,
        "poll_interval_seconds": POLL_INTERVAL,
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
        row(NAME, f"receipt -> settled webhook {q}", gateway[f"{q}_ms"], "ms",
            f"bare getBlock poll {q}", baseline[f"{q}_ms"])
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
