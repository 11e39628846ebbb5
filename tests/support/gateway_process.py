"""The gateway as an operating-system process: configuration files, start, SIGKILL, restart.

Two ways to start the same command (`chaingate run`, `chaingate worker tracker`, ...):
- `start_plain`: `python -m chaingate.entrypoints.cli ...`, exactly what an operator types.
- `Zygote.spawn`: a child forked from a process that already imported the gateway (see
  tests/support/zygote.py), for tests that restart it dozens of times.
Either way the test talks to it only through its port, its database and the chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from chaingate.config import NetworkConfig

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "chaingate.entrypoints.cli"]


def write_networks_file(path: Path, networks: list[NetworkConfig]) -> Path:
    """The `CHAINGATE_NETWORKS_FILE` TOML for `networks` (what an operator would write)."""
    lines: list[str] = []
    for network in networks:
        lines += [
            f"[networks.{network.name}]",
            f"chain_id = {network.chain_id}",
            f"rpc_urls = {json.dumps(network.rpc_urls)}",
            f"required_confirmations = {network.required_confirmations}",
            f"scan_batch_blocks = {network.scan_batch_blocks}",
            f"poll_interval_seconds = {network.poll_interval_seconds}",
        ]
        if network.ws_url:
            lines.append(f"ws_url = {json.dumps(network.ws_url)}")
        if network.start_block is not None:
            lines.append(f"start_block = {network.start_block}")
        for token in network.tokens:
            lines += [
                f"[[networks.{network.name}.tokens]]",
                f'symbol = "{token.symbol}"',
                f'contract = "{token.contract}"',
                f"decimals = {token.decimals}",
            ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class GatewaySetup:
    """Everything a gateway process is started with."""

    database_url: str
    networks_file: Path
    api_port: int
    log: Path
    settings: dict[str, str] = field(default_factory=dict)  # more CHAINGATE_* variables

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CHAINGATE_DATABASE_URL": self.database_url,
            "CHAINGATE_NETWORKS_FILE": str(self.networks_file),
            "CHAINGATE_SECRET_KEY": "crash-test-secret-key",
            "CHAINGATE_API_PORT": str(self.api_port),
            "CHAINGATE_DEV_MODE": "true",  # webhooks may go to the loopback receiver
            **self.settings,
        }


class GatewayProcess(Protocol):
    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...


@dataclass
class PlainProcess:
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class ForkedProcess:
    pid: int

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)  # the zygote's children are reaped at once: gone means dead
        except ProcessLookupError:
            return False
        return True


def start_plain(setup: GatewaySetup, *argv: str) -> PlainProcess:
    with setup.log.open("ab") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [*CLI, *argv],
            env=setup.env(),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    return PlainProcess(process)


class Zygote:
    """Client of tests/support/zygote.py; `close` ends the server, never its children."""

    def __init__(self) -> None:
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
            text=True,
        )
        self._ready = False

    def spawn(self, setup: GatewaySetup, *argv: str) -> ForkedProcess:
        assert self._server.stdin is not None and self._server.stdout is not None
        if not self._ready:
            first = self._server.stdout.readline().strip()
            assert first == "ready", f"zygote did not start: {first!r}"
            self._ready = True
        request = {"argv": list(argv), "env": setup.env(), "log": str(setup.log)}
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        return ForkedProcess(int(self._server.stdout.readline()))

    def close(self) -> None:
        if self._server.stdin is not None:
            self._server.stdin.close()
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait(timeout=10)
        if self._server.stdout is not None:
            self._server.stdout.close()


def sigkill(process: GatewayProcess, timeout: float = 10.0) -> bool:
    """SIGKILL `process` and wait until it is gone; False if it was already dead."""
    if not process.alive():
        return False
    try:
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    wait_gone(process, timeout)
    return True


def wait_gone(process: GatewayProcess, timeout: float = 10.0) -> None:
    if isinstance(process, PlainProcess):
        process.process.wait(timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    while process.alive():
        if time.monotonic() > deadline:
            raise AssertionError(f"process {process.pid} outlived SIGKILL by {timeout}s")
        time.sleep(0.002)


async def wait_ready(
    setup: GatewaySetup,
    process: GatewayProcess,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> None:
    """Until the API answers /healthz; fails fast with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=setup.base_url, timeout=1, trust_env=False) as http:
        while time.monotonic() < deadline:
            if not process.alive():
                raise AssertionError(f"gateway died while starting:\n{log_tail(setup.log)}")
            try:
                if (await http.get("/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.01)
    raise AssertionError(f"gateway not ready after {timeout}s:\n{log_tail(setup.log)}")


def log_tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"
