"""Signatures per second of the isolated signer, against a bare coincurve sign loop measured in
the same run (one core each, sequential requests):

- baseline: `coincurve.PrivateKey.sign_recoverable` of a 32-byte digest, nothing else;
- file keystore, key only: `FileKeyStore.sign_digest` (BIP-32 child below a cached account);
- SoftHSM2, key only: `Pkcs11KeyStore.sign_digest` (the token signs; low-S and the recovery
  id are computed by us);
- signer core in process, file key / SoftHSM key: a whole EIP-1559 decision — policy, nonce
  guard, the answer stored in SQLite (synchronous=FULL) and the audit line fsynced before the
  answer;
- through the socket: the same decision asked of a `chaingate signer` process over its Unix
  socket with per-request HMAC, by the gateway's client adapter.

Every request is a new request id and nonce, so nothing is answered from the idempotency
record. SoftHSM2 must be installed (make system-packages).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from coincurve import PrivateKey

from bench.common import Row, options, print_rows, row, write_result
from chaingate.adapters.signer.auth import read_token
from chaingate.adapters.signer.client import SocketSigner
from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    EvmTransaction,
    KeyRef,
    KeyStoreKind,
    SignPurpose,
    SignRequest,
)
from chaingate.signer.core import SignerCore
from chaingate.signer.keystores.pkcs11 import Pkcs11KeyStore
from chaingate.signer.throwaway import ThrowawaySigner, create_throwaway_signer

NAME = "signer"
CHAIN = 31337
RECIPIENT = "0x" + "5e" * 20
SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "246810"
NETWORKS = {
    "anvil": {
        "family": "evm",
        "chain_id": CHAIN,
        "max_fee_per_gas": 10**12,
        "max_priority_fee_per_gas": 10**11,
        "max_fee": "1",
    }
}


def _rate(call: Callable[[int], object], count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        call(index)
    return count / (time.perf_counter() - started)


def _request(prefix: str, key: KeyRef, nonce: int) -> SignRequest:
    tx = EvmTransaction(CHAIN, nonce, 10**9, 2 * 10**10, 21_000, RECIPIENT, 1)
    return SignRequest(f"{prefix}-{nonce}", "evm", "anvil", SignPurpose.PAYOUT, (key,), tx)


def _softhsm(workdir: Path) -> str:
    tokens = workdir / "tokens"
    tokens.mkdir()
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in ("bench", "bench-proc"):
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
             "--so-pin", "13579111"],
            check=True, capture_output=True,
        )  # fmt: skip
    return "bench"


def _hot(core: SignerCore, store: KeyStoreKind, name: str) -> KeyRef:
    account = core.create_account(
        AccountRequest(name, "anvil", "mer_bench", AddressRole.HOT, store)
    )
    return account.key_ref if store is KeyStoreKind.PKCS11 else account.key_ref.child(0, 0)


async def _socket_rate(state: ThrowawaySigner, key: KeyRef, count: int) -> float:
    client = SocketSigner(state.socket, read_token(state.token_file))
    try:
        await client.sign(_request("warm", key, 10**6))
        started = time.perf_counter()
        for nonce in range(count):
            await client.sign(_request("socket", key, nonce))
        return count / (time.perf_counter() - started)
    finally:
        await client.close()


def _start_signer(state: ThrowawaySigner) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("chaingate")), "signer", "--state-dir",
         str(state.state_dir), "--passphrase-file", str(state.passphrase_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not state.socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the signer did not start")
        time.sleep(0.05)
    return process


def measure(quick: bool) -> tuple[list[Row], dict[str, object]]:
    scale = 1 if quick else 4
    workdir = Path(tempfile.mkdtemp(prefix="chaingate-bench-signer-"))
    try:
        token = _softhsm(workdir)
        digest = bytes(range(32))
        bare = PrivateKey(os.urandom(32))
        rates: dict[str, float] = {}
        rates["coincurve"] = _rate(
            lambda i: bare.sign_recoverable(digest, hasher=None), 20_000 * scale
        )

        hsm = Pkcs11KeyStore(SOFTHSM, token, PIN)
        state = create_throwaway_signer(workdir / "in-process", NETWORKS)
        core = state.core({KeyStoreKind.PKCS11: hsm})
        file_key, hsm_key = (
            _hot(core, KeyStoreKind.FILE, "file"),
            _hot(core, KeyStoreKind.PKCS11, "hsm"),
        )
        file_store = core._keystores[KeyStoreKind.FILE]
        rates["file_key"] = _rate(lambda i: file_store.sign_digest(file_key, digest), 2_000 * scale)
        rates["hsm_key"] = _rate(lambda i: hsm.sign_digest(hsm_key, digest), 1_000 * scale)
        rates["core_file"] = _rate(lambda i: core.sign(_request("file", file_key, i)), 300 * scale)
        rates["core_hsm"] = _rate(lambda i: core.sign(_request("hsm", hsm_key, i)), 300 * scale)
        core.close()

        served = create_throwaway_signer(workdir / "served", NETWORKS)
        setup = served.core()
        socket_key = _hot(setup, KeyStoreKind.FILE, "socket")
        setup.close()
        process = _start_signer(served)
        try:
            rates["socket_file"] = asyncio.run(_socket_rate(served, socket_key, 300 * scale))
        finally:
            process.terminate()
            process.wait(30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    base = rates["coincurve"]
    labels = {
        "file_key": "file keystore sign_digest",
        "hsm_key": "SoftHSM2 sign_digest",
        "core_file": "signer core in process, file key",
        "core_hsm": "signer core in process, SoftHSM key",
        "socket_file": "chaingate signer over its socket, file key",
    }
    summary = [
        row(NAME, label, rates[key], "sig/s", "coincurve sign", base)
        for key, label in labels.items()
    ]
    details = {
        "rates": {k: round(v, 1) for k, v in rates.items()},
        "per_signature_us": {k: round(1e6 / v, 1) for k, v in rates.items()},
    }
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = measure(args.quick)
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
