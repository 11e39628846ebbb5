"""A private anvil node for a benchmark, and the transactions the benchmarks send through it.

anvil runs as its own process on a free loopback port, `--silent`, without a block time:
with automine every transaction is mined into its own block at once; with automine off the
benchmark mines explicitly (`anvil_mine`). Payers are anvil's unlocked dev accounts, so
`eth_sendTransaction` needs no signing in the benchmark process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode

from bench.common import REPO_ROOT, Child, free_port
from chaingate.adapters.chains.evm.artifacts import DEMO_TOKEN, load_artifact
from chaingate.adapters.chains.evm.wallet_ops import encode_call
from chaingate.entrypoints.dev.anvil import ANVIL_CHAIN_ID, ANVIL_MNEMONIC, find_anvil

TOKEN_SYMBOL = "BUSD"  # noqa: S105 - a token symbol
TOKEN_DECIMALS = 6
TOKEN_GAS = 100_000


class RpcFailed(Exception):
    pass


class Anvil:
    """An anvil process and a small synchronous JSON-RPC helper for setup work."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        argv = [
            find_anvil(REPO_ROOT),
            "--silent",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(ANVIL_CHAIN_ID),
            "--mnemonic",
            ANVIL_MNEMONIC,
            "--accounts",
            "10",
        ]
        # anvil keeps caches under $HOME/.foundry: keep them in the scratch directory.
        env = {**os.environ, "HOME": str(workdir)}
        self.child = Child(argv, workdir / f"anvil-{self.port}.log", env=env)
        self.http = httpx.Client(timeout=60, trust_env=False)
        self._wait_ready()
        self.accounts: list[str] = [a.lower() for a in self.rpc("eth_accounts")]

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.child.process.poll() is not None:
                raise RuntimeError(f"anvil exited: {self.child.tail()}")
            try:
                if int(self.rpc("eth_chainId"), 16) == ANVIL_CHAIN_ID:
                    return
            except (httpx.HTTPError, RpcFailed):
                time.sleep(0.05)
        raise RuntimeError("anvil did not answer within 20 s")

    def rpc(self, method: str, *params: Any) -> Any:
        answer = self.http.post(
            self.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        ).json()
        if "error" in answer:
            raise RpcFailed(f"{method}: {answer['error']}")
        return answer["result"]

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        answers = sorted(self.http.post(self.rpc_url, json=payload).json(), key=lambda a: a["id"])
        errors = [a["error"] for a in answers if "error" in a]
        if errors:
            raise RpcFailed(f"batch: {errors[0]}")
        return [a["result"] for a in answers]

    def tip(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def receipt(self, txid: str) -> dict[str, Any]:
        """The receipt, waiting for it if the transaction is not mined yet."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = self.rpc("eth_getTransactionReceipt", txid)
            if found is not None:
                return dict(found)
            time.sleep(0.01)
        raise RuntimeError(f"{txid} not mined within 30 s")

    def deploy_token(self, holder: str) -> str:
        """Deploy the demo ERC-20 from accounts[0], mint to `holder`; returns its address."""
        artifact = load_artifact(DEMO_TOKEN)
        arguments = encode(artifact.constructor_types(), ["Bench USD", TOKEN_SYMBOL, 6])
        deploy = {"from": self.accounts[0], "data": "0x" + (artifact.bytecode + arguments).hex()}
        contract = str(self.receipt(self.rpc("eth_sendTransaction", deploy))["contractAddress"])
        mint = encode_call("mint(address,uint256)", ["address", "uint256"], [holder, 10**18])
        self.receipt(
            self.rpc(
                "eth_sendTransaction",
                {"from": self.accounts[0], "to": contract, "data": "0x" + mint.hex()},
            )
        )
        return contract.lower()

    def close(self) -> None:
        self.http.close()
        self.child.stop()


def eth_transfer(sender: str, to: str, wei: int) -> tuple[str, list[Any]]:
    return ("eth_sendTransaction", [{"from": sender, "to": to, "value": hex(wei), "gas": "0x5208"}])


def token_transfer(sender: str, contract: str, to: str, units: int) -> tuple[str, list[Any]]:
    data = encode_call("transfer(address,uint256)", ["address", "uint256"], [to, units])
    transaction = {"from": sender, "to": contract, "data": "0x" + data.hex(), "gas": hex(TOKEN_GAS)}
    return ("eth_sendTransaction", [transaction])
