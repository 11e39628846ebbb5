"""`chaingate dev` as a user runs it (the README's run command): a real subprocess that starts
anvil, deploys the demo USDT, serves the API; `chaingate dev pay` pays; Ctrl-C stops it all;
a restart keeps the chain, the merchant and the invoice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.entrypoints.dev.litecoind import LitecoindNotFound, find_litecoind
from tests.support.anvil import find_anvil
from tests.support.net import free_port
from tests.support.services import require_or_skip

pytestmark = pytest.mark.anvil
CLI = [sys.executable, "-m", "chaingate.entrypoints.cli"]


def start_dev(state_dir: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "CHAINGATE_DATABASE_URL"}
    with log.open("ab") as output:
        return subprocess.Popen(
            [*CLI, "dev", "--port", str(port), "--state-dir", str(state_dir), *extra],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until(check: Any, timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-3000:]}")


def api_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    return process.wait(timeout=30)


def test_dev_demo_runs_pays_stops_and_resumes(tmp_path: Path) -> None:
    if find_anvil() is None:
        require_or_skip("anvil not installed: run make test / npm ci")
    state_dir, log, port = tmp_path / "state", tmp_path / "dev.log", free_port()
    process = start_dev(state_dir, port, log)
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: api_ready(api), 60, "the dev API", log)
        dev = json.loads((state_dir / "dev.json").read_text())
        assert dev["api_url"] == api and dev["network"] == "anvil" and dev["chain_id"] == 31337
        assert set(dev) >= {
            "api_key",
            "merchant_id",
            "rpc_url",
            "tokens",
            "payer_address",
            "payer_private_key",
        }
        auth = {"Authorization": f"Bearer {dev['api_key']}"}
        created = httpx.post(
            f"{api}/v1/invoices",
            headers=auth,
            timeout=10,
            json={"amount": "10", "currency": "USDT", "network": "anvil"},
        )
        assert created.status_code == 201, created.text
        invoice = created.json()
        paid = subprocess.run(
            [*CLI, "dev", "pay", invoice["id"], "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert paid.returncode == 0, paid.stderr
        assert invoice["address"] in paid.stdout

        def settled() -> dict[str, Any] | None:
            body: dict[str, Any] = httpx.get(
                f"{api}/v1/invoices/{invoice['id']}", headers=auth, timeout=5
            ).json()
            return body if body["status"] == "settled" else None

        done = wait_until(settled, 60, "the invoice to settle on auto-mined blocks", log)
        assert done["amount_paid"] == "10"
        assert done["payments"][0]["from"] == dev["payer_address"]
        assert stop(process) == 0
        assert not api_ready(api)
        rpc_port = int(dev["rpc_url"].rsplit(":", 1)[1])
        with pytest.raises(httpx.HTTPError):
            httpx.post(
                dev["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1
            )
        assert rpc_port > 0

        process = start_dev(state_dir, port, log)
        wait_until(lambda: api_ready(api), 60, "the dev API after a restart", log)
        again = json.loads((state_dir / "dev.json").read_text())
        assert again["api_key"] == dev["api_key"]
        assert again["tokens"] == dev["tokens"]  # same chain, same token contract
        kept = httpx.get(f"{api}/v1/invoices/{invoice['id']}", headers=auth, timeout=5).json()
        assert kept["status"] == "settled"
    finally:
        if process.poll() is None:
            stop(process)


def ltc_rpc(ltc: dict[str, str], method: str, *params: Any) -> Any:
    answer = httpx.post(
        ltc["rpc_url"],
        json={"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)},
        auth=(ltc["rpc_user"], ltc["rpc_password"]),
        timeout=5,
    )
    return answer.json()["result"]


def test_dev_demo_with_litecoin_pays_an_ltc_invoice(tmp_path: Path) -> None:
    if find_anvil() is None:
        require_or_skip("anvil not installed: run make test / npm ci")
    try:
        find_litecoind()
    except LitecoindNotFound as exc:
        require_or_skip(str(exc))
    state_dir, log, port = tmp_path / "state", tmp_path / "dev.log", free_port()
    process = start_dev(state_dir, port, log, "--chains", "eth,ltc")
    try:
        api = f"http://127.0.0.1:{port}"
        wait_until(lambda: api_ready(api), 90, "the dev API with litecoind", log)
        dev = json.loads((state_dir / "dev.json").read_text())
        ltc = dev["ltc"]
        assert set(ltc) == {"network", "rpc_url", "rpc_user", "rpc_password", "wallet"}
        assert ltc_rpc(ltc, "getblockcount") > 431  # past MWEB activation, funded
        auth = {"Authorization": f"Bearer {dev['api_key']}"}
        created = httpx.post(
            f"{api}/v1/invoices",
            headers=auth,
            timeout=10,
            json={"amount": "0.05", "currency": "LTC", "network": ltc["network"]},
        )
        assert created.status_code == 201, created.text
        invoice = created.json()
        assert invoice["payment_uri"].startswith(f"litecoin:{invoice['address']}?amount=0.05")
        paid = subprocess.run(
            [*CLI, "dev", "pay", invoice["id"], "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert paid.returncode == 0, paid.stderr
        txid = paid.stdout.strip().rsplit(" ", 1)[-1]

        def settled() -> dict[str, Any] | None:
            body: dict[str, Any] = httpx.get(
                f"{api}/v1/invoices/{invoice['id']}", headers=auth, timeout=5
            ).json()
            return body if body["status"] == "settled" else None

        # Two confirmations: `dev pay` mines one, the background miner the next.
        done = wait_until(settled, 90, "the LTC invoice to settle", log)
        assert done["amount_paid"] == "0.05"
        assert [p["txid"] for p in done["payments"]] == [txid]
        assert stop(process) == 0
        with pytest.raises(httpx.HTTPError):
            ltc_rpc(ltc, "getblockcount")
    finally:
        if process.poll() is None:
            stop(process)
