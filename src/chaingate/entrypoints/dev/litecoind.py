"""Starting, funding and stopping a local litecoind in regtest (dev demo and tests).

Litecoin Core speaks Bitcoin Core's JSON-RPC, so it stands in for every Bitcoin-family node.
Quirks handled here: Debian's `/usr/bin/litecoind` wrapper rewrites the user's config, so the
real binary is run directly; wallets are legacy (no descriptor support in that build); and
MWEB activates at regtest height 432, after which blocks can only be made once coins were
pegged in, so set-up pegs in at height 431.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from chaingate.entrypoints.dev.anvil import free_port
from chaingate.entrypoints.dev.lifetime import Tether

MWEB_PEGIN_HEIGHT = 431  # regtest MWEB is active from block 432: peg in with the block before
PAYER_FUNDING_OUTPUTS = 20
PAYER_OUTPUT_COINS = Decimal(25)
_DEBIAN_BINARY = "/usr/lib/litecoin/litecoind"


class LitecoindNotFound(Exception):
    pass


class LitecoindRpcError(Exception):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('message')} (code {error.get('code')})")
        self.code = error.get("code")


def find_litecoind() -> str:
    """The litecoind binary: $CHAINGATE_LITECOIND_BIN, Debian's real binary, or PATH."""
    explicit = os.environ.get("CHAINGATE_LITECOIND_BIN")
    if explicit:
        return explicit
    if Path(_DEBIAN_BINARY).is_file():
        return _DEBIAN_BINARY
    found = shutil.which("litecoind")
    if found:
        return found
    raise LitecoindNotFound(
        "litecoind not found: install it (`make system-packages` installs Debian's litecoind) "
        "or set CHAINGATE_LITECOIND_BIN"
    )


@dataclass
class LitecoindRpc:
    """A small synchronous JSON-RPC helper for a litecoind (dev demo and tests)."""

    rpc_url: str
    rpc_user: str
    rpc_password: str

    def wallet_url(self, wallet: str) -> str:
        return f"{self.rpc_url}/wallet/{wallet}"

    def call(self, method: str, *params: object, wallet: str | None = None) -> Any:
        """One JSON-RPC call; amounts come back as Decimal. Raises LitecoindRpcError."""
        url = self.wallet_url(wallet) if wallet else self.rpc_url
        answer = httpx.post(
            url,
            content=json.dumps(
                {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)},
                default=str,
            ),
            auth=(self.rpc_user, self.rpc_password),
            timeout=60,
        )
        body = json.loads(answer.text, parse_float=Decimal)
        if body.get("error"):
            raise LitecoindRpcError(method, body["error"])
        return body["result"]

    def mine(self, blocks: int, address: str | None = None) -> list[str]:
        """Mine `blocks` blocks to `address` (default: the miner wallet); their hashes."""
        target = address or self.call("getnewaddress", wallet="miner")
        hashes: list[str] = self.call("generatetoaddress", blocks, target)
        return hashes

    def pay(self, address: str, amount: Decimal, wallet: str = "payer") -> str:
        """Send `amount` coins from `wallet` (replaceable, BIP-125); the txid."""
        txid: str = self.call("sendtoaddress", address, str(amount), wallet=wallet)
        return txid


@dataclass
class LitecoindProcess(LitecoindRpc):
    """A regtest litecoind this process started."""

    process: subprocess.Popen[bytes]
    port: int
    datadir: Path

    def stop(self) -> None:
        """RPC `stop`, then SIGTERM, then SIGKILL if the node hangs."""
        if self.process.poll() is not None:
            return
        try:
            self.call("stop")
        except (httpx.HTTPError, LitecoindRpcError, ValueError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_litecoind(
    binary: str, datadir: Path, port: int | None = None, *, tether: Tether | None = None
) -> LitecoindProcess:
    """Start `litecoind -regtest` on a free loopback RPC port with its own datadir, P2P off.
    With `tether`, the node holds the state-dir lock and dies with this process.

    Raises RuntimeError when it exits or does not answer within 30 s.
    """
    datadir.mkdir(parents=True, exist_ok=True)
    rpc_port = port or free_port()
    user, password = "chaingate", secrets.token_hex(16)
    errors = datadir / "stderr.log"
    with errors.open("ab") as stderr:
        process = _spawn(binary, datadir, rpc_port, user, password, stderr, tether)
    node = LitecoindProcess(
        f"http://127.0.0.1:{rpc_port}", user, password, process, rpc_port, datadir
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = errors.read_text(errors="replace").strip()
            raise RuntimeError(f"litecoind exited with {process.returncode}: {detail}")
        try:
            node.call("getblockcount")
            return node
        except (httpx.HTTPError, LitecoindRpcError, ValueError):
            time.sleep(0.1)  # warming up (-28) or not listening yet
    node.stop()
    raise RuntimeError("litecoind did not answer within 30 s")


def _spawn(
    binary: str,
    datadir: Path,
    rpc_port: int,
    user: str,
    password: str,
    stderr: BinaryIO,
    tether: Tether | None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        [
            binary,
            "-regtest",
            f"-datadir={datadir}",
            f"-rpcport={rpc_port}",
            "-rpcbind=127.0.0.1",
            "-rpcallowip=127.0.0.1",
            f"-rpcuser={user}",
            f"-rpcpassword={password}",
            "-listen=0",
            "-port=0",
            "-dnsseed=0",
            "-discover=0",
            "-fallbackfee=0.0001",
            "-walletrbf=1",  # wallet sends signal BIP-125 so tests can bump them
            "-mempoolreplacement=1",  # Litecoin's default 0 refuses every BIP-125 replacement
            "-printtoconsole=0",
            "-rpcworkqueue=64",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        **(tether.popen_options() if tether is not None else {}),
    )


def fund_wallets(node: LitecoindProcess) -> None:
    """Create the legacy wallets "miner" and "payer", mine past MWEB activation, and give
    the payer PAYER_FUNDING_OUTPUTS spendable outputs (a wallet with few UTXOs sends fast).

    Idempotent on a node whose wallets already exist (a dev restart on the same datadir).
    """
    loaded = set(node.call("listwallets"))
    on_disk = {w["name"] for w in node.call("listwalletdir")["wallets"]}
    for name in ("miner", "payer"):
        if name in loaded:
            continue
        if name in on_disk:
            node.call("loadwallet", name)
        else:
            node.call("createwallet", name, False, False, "", False, False)
    height = int(node.call("getblockcount"))
    if height >= MWEB_PEGIN_HEIGHT + 1:
        return
    node.mine(MWEB_PEGIN_HEIGHT - height)
    mweb = node.call("getnewaddress", "", "mweb", wallet="miner")
    node.call("sendtoaddress", mweb, "1", wallet="miner")
    outputs = {
        node.call("getnewaddress", wallet="payer"): str(PAYER_OUTPUT_COINS)
        for _ in range(PAYER_FUNDING_OUTPUTS)
    }
    node.call("sendmany", "", outputs, wallet="miner")
    node.mine(1)
