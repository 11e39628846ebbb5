"""pytest plugin: throwaway signers, a SoftHSM2 token, and the `chaingate signer` process.

Fixtures
- `softhsm` (session): a private SoftHSM2 token directory (SOFTHSM2_CONF points at it for this
  process and the signer processes it starts), with one token for in-process keystores and one
  per signer process started by `signer_process`. Skips (fails under
  CHAINGATE_REQUIRE_SERVICES=1) when Debian's softhsm2 is missing.
- `signer_state` (function): `make(networks, destinations)` -> a ThrowawaySigner directory.

Helpers
- `SignerProcess`: start/stop/kill -9 `chaingate signer` on a throwaway state directory and
  talk to it through the real client adapter (`client()`).
- `evm_policy(...)`, `ltc_policy(...)`: policy tables for the test nodes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chaingate.adapters.signer.auth import read_token
from chaingate.adapters.signer.client import SocketSigner
from chaingate.signer.keystores.pkcs11 import Pkcs11KeyStore
from chaingate.signer.throwaway import ThrowawaySigner, create_throwaway_signer
from tests.support.services import require_or_skip

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
SOFTHSM_UTIL = "softhsm2-util"
HSM_PIN = "246810"
HSM_SO_PIN = "13579111"
IN_PROCESS_TOKEN = "cg-tests"
PROCESS_TOKENS = tuple(f"cg-proc-{i}" for i in range(4))
CHAINGATE = str(Path(sys.executable).with_name("chaingate"))


@dataclass(frozen=True)
class SoftHsm:
    conf: Path
    module: Path = SOFTHSM_MODULE
    pin: str = HSM_PIN

    def keystore(self, token: str = IN_PROCESS_TOKEN) -> Pkcs11KeyStore:
        return Pkcs11KeyStore(self.module, token, self.pin)


@pytest.fixture(scope="session")
def softhsm() -> Iterator[SoftHsm]:
    if not SOFTHSM_MODULE.exists() or shutil.which(SOFTHSM_UTIL) is None:
        require_or_skip("SoftHSM2 is not installed (make test installs Debian's softhsm2)")
    workdir = Path(tempfile.mkdtemp(prefix="chaingate-softhsm-"))
    tokens = workdir / "tokens"
    tokens.mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    # Every token exists before any process loads the library (it lists slots at start).
    for label in (IN_PROCESS_TOKEN, *PROCESS_TOKENS):
        subprocess.run(
            [
                SOFTHSM_UTIL,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                HSM_PIN,
                "--so-pin",
                HSM_SO_PIN,
            ],
            check=True,
            capture_output=True,
        )
    try:
        yield SoftHsm(conf)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        shutil.rmtree(workdir, ignore_errors=True)


def evm_policy(
    chain_id: int,
    *,
    tokens: Sequence[Mapping[str, Any]] = (),
    limits: Mapping[str, Mapping[str, str]] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "family": "evm",
        "chain_id": chain_id,
        "max_fee_per_gas": 500 * 10**9,
        "max_priority_fee_per_gas": 10 * 10**9,
        "max_fee": "0.05",
    }
    if tokens:
        policy["tokens"] = [dict(t) for t in tokens]
    if limits:
        policy["limits"] = {asset: dict(limit) for asset, limit in limits.items()}
    policy.update(overrides)
    return policy


def ltc_policy(**overrides: Any) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "family": "bitcoin",
        "chain": "litecoin",
        "chain_network": "regtest",
        "native_symbol": "LTC",
        "max_fee_rate": 100,
        "max_fee": "0.01",
    }
    policy.update(overrides)
    return policy


MakeSigner = Callable[..., ThrowawaySigner]


@pytest.fixture
def signer_state(tmp_path: Path) -> MakeSigner:
    counter = iter(range(1000))

    def make(
        networks: Mapping[str, Mapping[str, Any]],
        destinations: Sequence[Mapping[str, Any]] = (),
    ) -> ThrowawaySigner:
        return create_throwaway_signer(tmp_path / f"signer-{next(counter)}", networks, destinations)

    return make


@dataclass
class SignerProcess:
    """`chaingate signer` on a throwaway state directory, as an operator would run it."""

    state: ThrowawaySigner
    hsm: SoftHsm | None = None
    hsm_token: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)
    extra_args: Sequence[str] = ()
    socket_path: Path | None = None  # default: signer.sock in the state directory
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def socket(self) -> Path:
        return self.socket_path or self.state.socket

    def command(self) -> list[str]:
        args = [
            CHAINGATE,
            "signer",
            "--state-dir",
            str(self.state.state_dir),
            "--passphrase-file",
            str(self.state.passphrase_file),
            *self.extra_args,
        ]
        if self.socket_path is not None:
            args += ["--socket", str(self.socket_path)]
        if self.hsm is not None:
            pin_file = self.state.state_dir / "pin"
            pin_file.write_text(self.hsm.pin)
            args += [
                "--pkcs11-module",
                str(self.hsm.module),
                "--pkcs11-token",
                self.hsm_token or PROCESS_TOKENS[0],
                "--pkcs11-pin-file",
                str(pin_file),
            ]
        return args

    def start(self, timeout: float = 60.0) -> SignerProcess:
        """Start it and wait until it says it serves (a socket file left by a killed signer
        is the signer's own business: it replaces a stale one, refuses a live one)."""
        env = {**os.environ, **self.extra_env}
        self.log = self.state.state_dir.parent / f"{self.state.state_dir.name}.log"
        self.log.touch()
        offset = self.log.stat().st_size
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + timeout
        while b"serving on" not in self.log.read_bytes()[offset:]:
            if self.process.poll() is not None:
                raise RuntimeError(f"the signer exited: {self.log.read_text()[offset:][-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("the signer did not start serving")
            time.sleep(0.02)
        return self

    def client(self, **kwargs: Any) -> SocketSigner:
        return SocketSigner(self.socket, read_token(self.state.token_file), **kwargs)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """kill -9: no cleanup, the socket file stays behind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)


@pytest.fixture
def signer_processes() -> Iterator[list[SignerProcess]]:
    """Signer processes a test starts (append them): stopped after the test."""
    started: list[SignerProcess] = []
    yield started
    for process in started:
        process.stop()


def run_signer_command(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHAINGATE, "signer", *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
