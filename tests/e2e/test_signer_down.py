"""A signer that is down stops money going out, never money coming in.

The whole gateway runs (API, tracker following anvil, dispatcher) with a managed wallet made
while the signer was up; then the signer is killed with SIGKILL. Invoices are still created
on the managed wallet, paid, tracked to `settled` and announced by signed webhooks; only
custody requests answer `signer_unavailable` — until the signer is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.bootstrap import build_container
from chaingate.config import Settings
from chaingate.entrypoints.runtime import serve
from chaingate.services.merchants import create_merchant
from tests.support.anvil import AnvilNode
from tests.support.net import free_port
from tests.support.signer import MakeSigner, SignerProcess, evm_policy
from tests.support.webhook_receiver import Receiver

pytestmark = pytest.mark.anvil
ETH = 10**18


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


async def _until(predicate: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_invoices_tracking_and_webhooks_go_on_while_the_signer_is_down(
    anvil_isolated: AnvilNode,
    clean_database_url: str,
    receiver: Receiver,
    signer_state: MakeSigner,
    signer_processes: list[SignerProcess],
    tmp_path: Path,
) -> None:
    node = anvil_isolated
    state = signer_state({"anvil": evm_policy(node.chain_id)})
    signer = SignerProcess(state).start()
    signer_processes.append(signer)
    port = free_port()
    settings = Settings(
        database_url=clean_database_url,
        networks=[node.network(required_confirmations=2, start_block=await node.tip())],
        dev_mode=True,
        secret_key="signer-down-secret",
        api_port=port,
        signer_socket=state.socket,
        signer_token_file=state.token_file,
        webhook_retry_base_seconds=0.05,
        webhook_retry_max_seconds=0.2,
    )
    container = build_container(settings)
    await upgrade_to_head(container.db.engine)
    stop, ready = asyncio.Event(), asyncio.Event()
    runtime = asyncio.ensure_future(serve(container, stop=stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        async with container.db.uow() as uow:
            _, key = await create_merchant(uow, "Shop", container.clock.now())
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=10
        ) as api:
            wallet = await api.post("/v1/wallets", json={"network": "anvil", "custody": "managed"})
            assert wallet.status_code == 201, wallet.text
            hook = await api.post("/v1/webhooks", json={"url": receiver.route("/hook", None)})
            assert hook.status_code == 201, hook.text

            signer.kill()  # SIGKILL: the socket file stays, nobody answers on it

            down = await api.post("/v1/treasury", json={"network": "anvil", "role": "hot"})
            assert (down.status_code, down.json()["code"]) == (503, "signer_unavailable")
            invoice = (
                await api.post(
                    "/v1/invoices", json={"amount": "0.25", "currency": "ETH", "network": "anvil"}
                )
            ).json()
            assert invoice["status"] == "new"
            await node.rpc(
                "eth_sendTransaction",
                {
                    "from": node.accounts[1].address,
                    "to": invoice["address"],
                    "value": hex(ETH // 4),
                },
            )

            async def settled() -> bool:
                await node.mine(1)
                current = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
                return bool(current["status"] == "settled")

            await _until(settled, 30, "the invoice on the managed wallet to settle")
            events = (await api.get("/v1/events")).json()["data"]
            types = [e["type"] for e in events if e.get("data", {}).get("id") == invoice["id"]]
            assert types[-1] == "invoice.settled"

            async def delivered() -> bool:
                got = {r.event_id for r in receiver.at("/hook")}
                return all(e["id"] in got for e in events)

            await _until(delivered, 30, "every event's webhook")

            # Back up: money out can be asked for again.
            signer.start()
            hot = await api.post("/v1/treasury", json={"network": "anvil", "role": "hot"})
            assert hot.status_code == 201, hot.text
    finally:
        stop.set()
        await asyncio.wait_for(runtime, 30)
