"""`chaingate dev` as a real process: its nodes die with it, even after `kill -9`, and a state
directory is never run by two of them at once (a live one refuses the second start; after a
`kill -9` the next start waits for the dead one's nodes to finish, then takes over)."""

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

pytestmark = [pytest.mark.anvil, pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's"
)]  # fmt: skip
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


def children(pid: int) -> dict[int, str]:
    """pid -> command name of the live processes whose parent is `pid`."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = name
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def processes_using(path: Path) -> set[int]:
    """Live processes whose command line names `path` (an anvil --state file)."""
    users = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if str(path).encode() in argv and running(int(entry.name)):
                users.add(int(entry.name))
    return users


def interrupt(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def test_kill_9_takes_the_nodes_along_and_the_next_start_takes_over(tmp_path: Path) -> None:
    if find_anvil() is None:
        require_or_skip("anvil not installed: run make test / npm ci")
    try:
        find_litecoind()
    except LitecoindNotFound as exc:
        require_or_skip(str(exc))
    state_dir, log, port = tmp_path / "state", tmp_path / "dev.log", free_port()
    api = f"http://127.0.0.1:{port}"
    first = start_dev(state_dir, port, log, "--chains", "eth,ltc")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: api_ready(api), 120, "the dev API", log)
        nodes = children(first.pid)
        assert sorted(nodes.values()) == ["anvil", "litecoind"], nodes
        dev = json.loads((state_dir / "dev.json").read_text())

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_until(
            lambda: not any(running(pid) for pid in nodes), 60, "the orphaned nodes to exit", log
        )
        with pytest.raises(httpx.HTTPError):
            httpx.post(dev["rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})

        second = start_dev(state_dir, port, log, "--chains", "eth,ltc")
        wait_until(lambda: api_ready(api), 120, "the dev API after kill -9", log)
        assert processes_using(state_dir / "anvil-state.json") == {
            pid for pid, name in children(second.pid).items() if name == "anvil"
        }
        again = json.loads((state_dir / "dev.json").read_text())
        assert again["api_key"] == dev["api_key"]  # the same state, taken over
    finally:
        for process in (first, second):
            if process is not None:
                interrupt(process)


def test_a_second_start_on_a_live_state_dir_is_refused(tmp_path: Path) -> None:
    if find_anvil() is None:
        require_or_skip("anvil not installed: run make test / npm ci")
    state_dir, log, port = tmp_path / "state", tmp_path / "dev.log", free_port()
    api = f"http://127.0.0.1:{port}"
    first = start_dev(state_dir, port, log)
    try:
        wait_until(lambda: api_ready(api), 60, "the dev API", log)
        [anvil] = children(first.pid)
        intruder = subprocess.run(
            [*CLI, "dev", "--port", str(free_port()), "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={k: v for k, v in os.environ.items() if k != "CHAINGATE_DATABASE_URL"},
        )
        assert intruder.returncode == 1, intruder.stdout + intruder.stderr
        assert f"in use by chaingate dev (pid {first.pid})" in intruder.stderr
        assert processes_using(state_dir / "anvil-state.json") == {anvil}
        assert api_ready(api)
    finally:
        interrupt(first)
    assert first.returncode == 0
    assert not running(anvil)
