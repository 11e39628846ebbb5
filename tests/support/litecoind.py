"""pytest plugin: real litecoind regtest nodes (Litecoin Core speaks Bitcoin Core's JSON-RPC).

Fixtures
- `litecoind` (session): one node on a free loopback port with its own datadir, past MWEB
  activation (height 432+), with legacy wallets "miner" (gets the block rewards) and "payer"
  (20 outputs of 25 LTC: the independent client that pays invoices). Tests share its chain:
  use fresh addresses and never assume a height.
- `litecoind_isolated` (function): a node of its own, started from a copy of the same funded
  chain (~1 s), for tests that reorg (`invalidateblock`) or otherwise disturb the chain.
- `litecoind_backup` (function): another such node. With `litecoind_isolated` it makes two
  nodes on the same chain that share nothing else (P2P is off): a transaction sent to one is
  in that one's mempool only, as with a primary node and a backup that never received it.

The helpers are async (`await litecoind.rpc("getblockcount")`); amounts are Decimal coins
in RPC answers and integer satoshis in `pay`. Binary: $CHAINGATE_LITECOIND_BIN, else
Debian's /usr/lib/litecoin/litecoind, else `litecoind` on PATH.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.config import NetworkConfig
from chaingate.entrypoints.dev.litecoind import (
    LitecoindNotFound,
    LitecoindProcess,
    LitecoindRpcError,
    find_litecoind,
    fund_wallets,
    start_litecoind,
)
from tests.support.net import listening_pid_owns
from tests.support.services import require_or_skip

SATOSHI = Decimal("0.00000001")


@dataclass
class LitecoindNode:
    """A running regtest litecoind and async helpers to drive it."""

    rpc_url: str
    rpc_user: str
    rpc_password: str
    process: LitecoindProcess = field(repr=False)

    async def rpc(self, method: str, *params: Any, wallet: str | None = None) -> Any:
        """One JSON-RPC call (floats as Decimal); raises LitecoindRpcError for an error answer."""
        url = f"{self.rpc_url}/wallet/{wallet}" if wallet else self.rpc_url
        payload = {"jsonrpc": "1.0", "id": 1, "method": method, "params": list(params)}
        async with httpx.AsyncClient(timeout=60) as http:
            answer = await http.post(
                url,
                content=json.dumps(payload, default=str),
                auth=(self.rpc_user, self.rpc_password),
            )
        body = json.loads(answer.text, parse_float=Decimal)
        if body.get("error"):
            raise LitecoindRpcError(method, body["error"])
        return body["result"]

    def network(self, *, name: str = "ltc-regtest", **overrides: Any) -> NetworkConfig:
        """A NetworkConfig for this node (user/password auth, 1 confirmation, fast polling)."""
        settings: dict[str, Any] = {
            "name": name,
            "kind": "bitcoin",
            "chain": "litecoin",
            "chain_network": "regtest",
            "rpc_urls": [self.rpc_url],
            "rpc_user": self.rpc_user,
            "rpc_password": self.rpc_password,
            "required_confirmations": 1,
            "poll_interval_seconds": 0.2,
        }
        settings.update(overrides)
        return BitcoinNetworkConfig(**settings)

    async def tip(self) -> int:
        return int(await self.rpc("getblockcount"))

    async def mine(self, blocks: int = 1, address: str | None = None) -> list[str]:
        """Mine `blocks` blocks (with the mempool's transactions) to the miner wallet."""
        target = address or await self.rpc("getnewaddress", wallet="miner")
        hashes: list[str] = await self.rpc("generatetoaddress", blocks, target)
        return hashes

    async def pay(self, address: str, satoshis: int, *, wallet: str = "payer") -> str:
        """Send `satoshis` from `wallet` with `sendtoaddress` (BIP-125 replaceable); the txid."""
        coins = (Decimal(satoshis) * SATOSHI).quantize(SATOSHI)
        txid: str = await self.rpc("sendtoaddress", address, str(coins), wallet=wallet)
        return txid

    async def new_address(self, wallet: str = "miner") -> str:
        address: str = await self.rpc("getnewaddress", wallet=wallet)
        return address


def _binary() -> str:
    try:
        return find_litecoind()
    except LitecoindNotFound as exc:
        require_or_skip(f"{exc} (make test installs it)")
        raise AssertionError("unreachable") from exc  # require_or_skip always raises


def _start(datadir: Path) -> LitecoindProcess:
    binary = _binary()
    for _ in range(3):
        process = start_litecoind(binary, datadir)
        if listening_pid_owns(process.process.pid, process.port):
            fund_wallets(process)
            return process
        process.stop()  # another process won the race for the port
    raise RuntimeError("litecoind could not get a port of its own")


def _node(process: LitecoindProcess) -> LitecoindNode:
    return LitecoindNode(process.rpc_url, process.rpc_user, process.rpc_password, process)


@pytest.fixture(scope="session")
def litecoind_chain() -> Iterator[Path]:
    """A stopped node's datadir holding the funded regtest chain the nodes start from."""
    workdir = Path(tempfile.mkdtemp(prefix="chaingate-litecoind-"))
    template = workdir / "template"
    process = _start(template)
    process.stop()
    try:
        yield template
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def litecoind(litecoind_chain: Path) -> Iterator[LitecoindNode]:
    """The session's shared litecoind (see the module docstring)."""
    datadir = litecoind_chain.parent / "session"
    shutil.copytree(litecoind_chain, datadir)
    process = _start(datadir)
    try:
        yield _node(process)
    finally:
        process.stop()


def _copy_of_the_chain(litecoind_chain: Path) -> Iterator[LitecoindNode]:
    datadir = Path(tempfile.mkdtemp(prefix="node-", dir=litecoind_chain.parent))
    shutil.rmtree(datadir)
    shutil.copytree(litecoind_chain, datadir)
    process = _start(datadir)
    try:
        yield _node(process)
    finally:
        process.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def litecoind_isolated(litecoind_chain: Path) -> Iterator[LitecoindNode]:
    """A litecoind of the test's own, on a copy of the funded chain."""
    yield from _copy_of_the_chain(litecoind_chain)


@pytest.fixture
def litecoind_backup(litecoind_chain: Path) -> Iterator[LitecoindNode]:
    """A second litecoind of the test's own, on another copy of the same funded chain."""
    yield from _copy_of_the_chain(litecoind_chain)


_NODE_FIXTURES = {"litecoind", "litecoind_isolated", "litecoind_backup"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses litecoind, so `-m "not litecoind"` deselects them."""
    for item in items:
        if _NODE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.litecoind)
