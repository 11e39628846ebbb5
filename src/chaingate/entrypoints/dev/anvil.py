"""Starting and stopping a local anvil node for the dev demo."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from chaingate.entrypoints.dev.lifetime import Tether

# anvil's well-known development mnemonic: its accounts are funded with 10,000 ETH each.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337


class AnvilNotFound(Exception):
    pass


def find_anvil(start: Path) -> str:
    """The anvil binary: $CHAINGATE_ANVIL_BIN, the project's npm install, or PATH."""
    explicit = os.environ.get("CHAINGATE_ANVIL_BIN")
    if explicit:
        return explicit
    # The working directory's project first, then the one this package was installed from.
    here = Path(__file__).resolve()
    for folder in (start, *start.parents, *here.parents):
        candidate = folder / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise AnvilNotFound("anvil not found: run `make setup` (npm ci installs it) or pass --rpc-url")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class AnvilProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM lets anvil write its state file; SIGKILL only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_anvil(
    binary: str, state_file: Path, block_time: int = 1, *, tether: Tether | None = None
) -> AnvilProcess:
    """Start anvil on a free loopback port, keeping its chain in `state_file` across runs.
    With `tether`, anvil holds the state-dir lock and dies with this process."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            binary,
            "--silent",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(ANVIL_CHAIN_ID),
            "--mnemonic",
            ANVIL_MNEMONIC,
            "--block-time",
            str(block_time),
            "--state",
            str(state_file),
            "--state-interval",
            "5",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **(tether.popen_options() if tether is not None else {}),
    )
    node = AnvilProcess(process, port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"anvil exited with {process.returncode}: {stderr.strip()}")
        try:
            answer = httpx.post(
                node.rpc_url,
                json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                timeout=1,
            )
            if answer.status_code == 200 and int(answer.json()["result"], 16) == ANVIL_CHAIN_ID:
                return node
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    node.stop()
    raise RuntimeError("anvil did not answer within 20 s")
