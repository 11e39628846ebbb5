"""pytest plugin: one real anvil node per test session, and per-test isolation by snapshot.

Fixtures
- `anvil` (session): an `AnvilNode` on a free loopback port, chain id 31337, automine (every
  transaction is mined at once into its own block), ten accounts funded from anvil's default
  mnemonic. Skips (or fails under CHAINGATE_REQUIRE_SERVICES=1) when the binary is missing.
- `anvil_isolated` (function): the same node, with an `evm_snapshot` taken before the test and
  reverted after it, so each test starts from the same chain. Use this one in tests that send
  transactions or mine.

The helpers are async (`await anvil.rpc("eth_blockNumber")`): every test runs on its own event
loop, so each helper call opens its own short-lived HTTP connection.

Binary: $CHAINGATE_ANVIL_BIN, else <repo>/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
(`npm ci`), else `anvil` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from chaingate.adapters.chains.evm import wallet_ops
from chaingate.adapters.chains.evm.artifacts import DEMO_TOKEN, load_artifact
from chaingate.adapters.chains.evm.config import EvmNetworkConfig
from chaingate.adapters.chains.evm.rpc import JsonRpcClient, RpcError
from chaingate.config import NetworkConfig, TokenConfig
from tests.support.net import free_port, listening_pid_owns
from tests.support.services import require_or_skip

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
ANVIL_ACCOUNTS = 10
REPO_ROOT = Path(__file__).resolve().parents[2]
NPM_ANVIL = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


@dataclass(frozen=True, slots=True)
class FundedAccount:
    address: str  # lower-case 0x-hex
    private_key: str  # 0x-hex; a well-known public test key, never a real one


def funded_accounts(count: int = ANVIL_ACCOUNTS) -> list[FundedAccount]:
    """anvil's default accounts m/44'/60'/0'/0/i, derived independently with eth-account."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for index in range(count):
        key = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        accounts.append(FundedAccount(str(key.address).lower(), "0x" + bytes(key.key).hex()))
    return accounts


def find_anvil() -> str | None:
    """The anvil binary to run, or None."""
    configured = os.environ.get("CHAINGATE_ANVIL_BIN")
    if configured:
        return configured
    if NPM_ANVIL.exists():
        return str(NPM_ANVIL)
    return shutil.which("anvil")


@dataclass
class AnvilNode:
    """A running anvil and async helpers to drive it."""

    rpc_url: str
    ws_url: str
    chain_id: int
    accounts: list[FundedAccount]
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def deployer(self) -> FundedAccount:
        """accounts[0]: deploys and owns the tokens of `deploy_token`."""
        return self.accounts[0]

    async def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; raises RpcError for an error answer."""
        async with httpx.AsyncClient(timeout=30) as http:
            answer = (
                await http.post(
                    self.rpc_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
                )
            ).json()
        if "error" in answer:
            raise RpcError(answer["error"]["code"], answer["error"]["message"])
        return answer["result"]

    @asynccontextmanager
    async def rpc_client(self, *extra_urls_first: str) -> AsyncIterator[JsonRpcClient]:
        """A JsonRpcClient on this node (after `extra_urls_first`, e.g. a dead URL)."""
        client = JsonRpcClient([*extra_urls_first, self.rpc_url], timeout=10)
        try:
            yield client
        finally:
            await client.close()

    def network(
        self, tokens: Sequence[TokenConfig] = (), *, name: str = "anvil", **overrides: Any
    ) -> NetworkConfig:
        """A NetworkConfig for this node (HTTP and WebSocket), whitelisting `tokens`."""
        settings: dict[str, Any] = {
            "name": name,
            "chain_id": self.chain_id,
            "rpc_urls": [self.rpc_url],
            "ws_url": self.ws_url,
            "native_symbol": "ETH",
            "native_decimals": 18,
            "required_confirmations": 1,
            "tokens": list(tokens),
            "poll_interval_seconds": 0.2,
        }
        settings.update(overrides)
        return EvmNetworkConfig(**settings)

    async def tip(self) -> int:
        return int(await self.rpc("eth_blockNumber"), 16)

    async def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` empty blocks."""
        await self.rpc("anvil_mine", hex(blocks))

    async def snapshot(self) -> str:
        snapshot_id: str = await self.rpc("evm_snapshot")
        return snapshot_id

    async def revert(self, snapshot_id: str) -> None:
        if await self.rpc("evm_revert", snapshot_id) is not True:
            raise RuntimeError(f"anvil could not revert to snapshot {snapshot_id}")

    async def reorg(self, depth: int) -> None:
        """Replace the newest `depth` blocks with new empty ones (the chain keeps its height)."""
        await self.rpc("anvil_reorg", depth, [])

    async def deploy_token(
        self,
        symbol: str,
        decimals: int,
        *,
        name: str | None = None,
        supply: int | None = None,
        holder: str | None = None,
    ) -> TokenConfig:
        """Deploy a DemoToken and mint `supply` (default 1,000,000 tokens) to `holder`
        (default the deployer). Returns its TokenConfig, ready to whitelist."""
        async with self.rpc_client() as rpc:
            key = self.deployer.private_key
            contract = await wallet_ops.deploy_contract(
                rpc, key, load_artifact(DEMO_TOKEN), [name or f"Demo {symbol}", symbol, decimals]
            )
            amount = supply if supply is not None else 1_000_000 * 10**decimals
            txid = await wallet_ops.mint_token(
                rpc, key, contract, holder or self.deployer.address, amount
            )
            await wallet_ops.wait_receipt(rpc, txid)
        return TokenConfig(symbol=symbol, contract=contract, decimals=decimals)

    async def deploy(self, contract_name: str, *args: Any) -> str:
        """Deploy a shipped artifact from the deployer; returns its address."""
        async with self.rpc_client() as rpc:
            return await wallet_ops.deploy_contract(
                rpc, self.deployer.private_key, load_artifact(contract_name), args
            )


def start_anvil(
    binary: str, workdir: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start anvil on `port` (default: a free one) and return it once it answers RPC from a
    port it provably owns. Without `port`, retries on a new port when another process wins
    the race for it. Stop it with `stop_anvil`."""
    for _ in range(1 if port is not None else 3):
        chosen = port if port is not None else free_port()
        log = (workdir / f"anvil-{chosen}.log").open("ab")
        process = subprocess.Popen(
            [
                binary,
                "--silent",
                "--host",
                "127.0.0.1",
                "--port",
                str(chosen),
                "--chain-id",
                str(ANVIL_CHAIN_ID),
                "--accounts",
                str(ANVIL_ACCOUNTS),
            ],
            cwd=workdir,
            # anvil keeps caches under $HOME/.foundry: keep them in the session's own directory.
            env={**os.environ, "HOME": str(workdir)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if _wait_ready(process, chosen) and listening_pid_owns(process.pid, chosen):
            return process, chosen
        stop_anvil(process)
    raise RuntimeError(f"anvil did not start; see the logs in {workdir}")


def _wait_ready(process: subprocess.Popen[bytes], port: int, within: float = 20.0) -> bool:
    deadline = time.monotonic() + within
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                answer = http.post(f"http://127.0.0.1:{port}", json=request).json()
            except (httpx.HTTPError, ValueError):
                time.sleep(0.05)
                continue
            return bool(answer.get("result") == hex(ANVIL_CHAIN_ID))
    return False


def stop_anvil(process: subprocess.Popen[bytes]) -> None:
    """Terminate an anvil started by `start_anvil` (kill it if it does not stop)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def anvil() -> Iterator[AnvilNode]:
    """A real anvil node for the whole session (see the module docstring)."""
    binary = find_anvil()
    if binary is None or not os.access(binary, os.X_OK):
        require_or_skip(f"anvil not installed ({binary or 'not found'}): run make test / npm ci")
        raise AssertionError("unreachable")  # require_or_skip always raises
    workdir = Path(tempfile.mkdtemp(prefix="chaingate-anvil-"))
    process, port = start_anvil(binary, workdir)
    try:
        yield AnvilNode(
            rpc_url=f"http://127.0.0.1:{port}",
            ws_url=f"ws://127.0.0.1:{port}",
            chain_id=ANVIL_CHAIN_ID,
            accounts=funded_accounts(),
            process=process,
        )
    finally:
        stop_anvil(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
async def anvil_isolated(anvil: AnvilNode) -> AsyncIterator[AnvilNode]:
    """The session's anvil, reverted after the test to the state it had before."""
    snapshot_id = await anvil.snapshot()
    yield anvil
    await anvil.revert(snapshot_id)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses anvil, so `-m "not anvil"` deselects them."""
    for item in items:
        if "anvil" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.anvil)
