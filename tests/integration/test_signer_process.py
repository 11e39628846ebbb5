"""`chaingate signer` as an operating-system process, reached only through its Unix socket and
the real client adapter: file modes, every refusal (policy, authentication, replay) in the audit
log, `audit verify` on an intact and a tampered log, policy reload on SIGHUP, and kill -9 in
the middle of signing followed by a restart that answers the same bytes.
"""

from __future__ import annotations

import asyncio
import os
import random
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaingate.adapters.chains.evm.transactions import decode_signed, transaction_hash
from chaingate.adapters.signer import wire
from chaingate.adapters.signer.auth import read_token, sign_headers
from chaingate.adapters.signer.client import SocketSigner
from chaingate.domain.custody import (
    AccountRequest,
    AddressRole,
    EvmTransaction,
    KeyRef,
    KeyStoreKind,
    ManagedAccount,
    SignerRefused,
    SignerUnavailable,
    SignPurpose,
    SignRequest,
)
from chaingate.signer.audit import read_lines
from chaingate.signer.throwaway import THROWAWAY_PASSPHRASE, ThrowawaySigner
from tests.support.signer import (
    PROCESS_TOKENS,
    MakeSigner,
    SignerProcess,
    SoftHsm,
    evm_policy,
    run_signer_command,
)

CHAIN = 31337
GWEI = 10**9
ETH = 10**18
COLD = "0x" + "c0" * 20
STRANGER = "0x" + "5e" * 20


def _networks() -> dict[str, Any]:
    return {
        "anvil": evm_policy(
            CHAIN,
            max_fee_per_gas=100 * GWEI,
            max_priority_fee_per_gas=3 * GWEI,
            limits={"ETH": {"per_tx": "1", "per_day": "1.5"}},
        )
    }


def _tx(to: str, value: int, nonce: int, **overrides: Any) -> EvmTransaction:
    fields: dict[str, Any] = {
        "chain_id": CHAIN,
        "nonce": nonce,
        "max_priority_fee_per_gas": GWEI,
        "max_fee_per_gas": 20 * GWEI,
        "gas_limit": 21_000,
        "to": to,
        "value": value,
    }
    fields.update(overrides)
    return EvmTransaction(**fields)


def _request(request_id: str, key: KeyRef, tx: EvmTransaction) -> SignRequest:
    return SignRequest(request_id, "evm", "anvil", SignPurpose.PAYOUT, (key,), tx)


async def _accounts(
    client: SocketSigner, store: KeyStoreKind = KeyStoreKind.FILE
) -> tuple[ManagedAccount, ManagedAccount]:
    user = await client.create_account(AccountRequest("user", "anvil", "mer_A"))
    hot = await client.create_account(
        AccountRequest("hot", "anvil", "mer_A", AddressRole.HOT, store)
    )
    return user, hot


def _hot_key(hot: ManagedAccount) -> KeyRef:
    return hot.key_ref if hot.key_ref.store is KeyStoreKind.PKCS11 else hot.key_ref.child(0, 0)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _reasons(state: ThrowawaySigner) -> list[str]:
    return [
        str(line["reason"])
        for line in read_lines(state.state_dir / "audit.jsonl")
        if line["decision"] == "refused"
    ]


async def test_the_signer_keeps_its_files_and_socket_to_itself(
    signer_state: MakeSigner, signer_processes: list[SignerProcess]
) -> None:
    state = signer_state(_networks())
    process = SignerProcess(state).start()
    signer_processes.append(process)
    client = process.client()
    try:
        await _accounts(client)
    finally:
        await client.close()
    assert _mode(state.state_dir) == 0o700
    assert _mode(state.socket) == 0o600 and stat.S_ISSOCK(os.stat(state.socket).st_mode)
    for name in ("keystore.json", "signer.sqlite", "audit.jsonl", "policy.toml", "token"):
        assert _mode(state.state_dir / name) == 0o600, name
    # A second signer on the same state is refused, the first keeps serving.
    second = SignerProcess(state)
    signer_processes.append(second)
    with pytest.raises(RuntimeError, match="already serves"):
        second.start()
    client = process.client()
    try:
        assert (await client.status()).unlocked
    finally:
        await client.close()


async def test_every_refusal_is_audited_and_the_log_verifies_until_tampered(
    signer_state: MakeSigner, signer_processes: list[SignerProcess]
) -> None:
    state = signer_state(_networks(), [{"network": "anvil", "merchant": "mer_A", "address": COLD}])
    process = SignerProcess(state).start()
    signer_processes.append(process)
    client = process.client()
    try:
        user, hot = await _accounts(client)
        deposit, payer = user.key_ref.child(0, 1), _hot_key(hot)
        assert (await client.sign(_request("cold", deposit, _tx(COLD, ETH, 0)))).txid
        first = await client.sign(_request("p1", payer, _tx(STRANGER, ETH, 0)))
        policy_cases = {
            "destination_not_allowed": _request("r1", deposit, _tx(STRANGER, 1, 1)),
            "amount_over_tx_limit": _request("r2", payer, _tx(STRANGER, ETH + 1, 1)),
            "amount_over_daily_limit": _request("r3", payer, _tx(STRANGER, ETH, 1)),
            "wrong_chain": _request("r4", payer, _tx(STRANGER, 1, 1, chain_id=1)),
            "fee_over_ceiling": _request("r5", payer, _tx(STRANGER, 1, 1, max_fee_per_gas=10**12)),
            "nonce_used": _request("r6", payer, _tx(STRANGER, 2, 0)),
        }
        for reason, request in policy_cases.items():
            with pytest.raises(SignerRefused) as refused:
                await client.sign(request)
            assert refused.value.reason_code == reason
        # The request id answered before still answers its bytes (not a second signature).
        assert await client.sign(_request("p1", payer, _tx(STRANGER, ETH, 0))) == first
    finally:
        await client.close()

    # Authentication: a wrong token, a stale timestamp, no headers at all, a replayed request.
    wrong = SocketSigner(state.socket, b"f" * 64)
    late = SocketSigner(state.socket, read_token(state.token_file), clock=lambda: time.time() - 300)
    try:
        for stranger in (wrong, late):
            with pytest.raises(SignerUnavailable, match="authenticate"):
                await stranger.status()
    finally:
        await wrong.close()
        await late.close()
    body = wire.canonical(wire.sign_request(_request("r7", payer, _tx(STRANGER, 1, 1))))
    headers = sign_headers(read_token(state.token_file), "POST", "/v1/sign", body, int(time.time()))
    transport = httpx.AsyncHTTPTransport(uds=str(state.socket))
    async with httpx.AsyncClient(transport=transport, base_url="http://signer") as raw:
        assert (await raw.post("/v1/sign", content=body)).status_code == 401
        assert (await raw.post("/v1/sign", content=body, headers=headers)).status_code == 200
        replay = await raw.post("/v1/sign", content=body, headers=headers)
        assert replay.status_code == 401 and replay.json()["reason"] == "replayed"
        tampered = body.replace(b'"value":"1"', b'"value":"9"')
        forged = await raw.post("/v1/sign", content=tampered, headers=headers)
        assert forged.status_code == 401
    process.stop()

    reasons = _reasons(state)
    for reason in (*policy_cases, "unauthenticated", "stale", "replayed"):
        assert reason in reasons, reason
    assert reasons.count("unauthenticated") >= 3  # wrong token, no headers, forged body
    verified = run_signer_command("audit", "verify", "--state-dir", str(state.state_dir))
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout

    log = state.state_dir / "audit.jsonl"
    lines = log.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if '"reason":"amount_over_tx_limit"' in line)
    lines[target] = lines[target].replace("amount_over_tx_limit", "signed_fine")
    log.write_text("\n".join(lines) + "\n")
    broken = run_signer_command("audit", "verify", "--state-dir", str(state.state_dir))
    assert broken.returncode == 1
    assert f"line {target + 1}" in broken.stderr
    # ...and a damaged log stops the signer from starting (an operator must look).
    restarted = SignerProcess(state)
    signer_processes.append(restarted)
    with pytest.raises(RuntimeError, match="audit log"):
        restarted.start()
    log.write_text("\n".join(lines[:-2]) + "\n")  # cut off the end instead: also caught
    assert run_signer_command("audit", "verify", "--state-dir", str(state.state_dir)).returncode


async def test_sighup_reloads_the_policy_and_a_broken_file_keeps_the_old_one(
    signer_state: MakeSigner, signer_processes: list[SignerProcess]
) -> None:
    state = signer_state(_networks())
    process = SignerProcess(state).start()
    signer_processes.append(process)
    client = process.client()
    try:
        user, _ = await _accounts(client)
        deposit = user.key_ref.child(0, 2)
        with pytest.raises(SignerRefused):
            await client.sign(_request("before", deposit, _tx(COLD, ETH, 0)))
        added = run_signer_command(
            "policy",
            "add-destination",
            "--state-dir",
            str(state.state_dir),
            "--network",
            "anvil",
            "--merchant",
            "mer_A",
            "--address",
            COLD,
        )
        assert added.returncode == 0, added.stderr
        digest = (await client.status()).policy_digest
        process.reload()
        for _ in range(600):  # a loaded machine may take its time
            if (await client.status()).policy_digest != digest:
                break
            await asyncio.sleep(0.05)
        assert await client.sign(_request("after", deposit, _tx(COLD, ETH, 0)))
        state.policy.write_text(state.policy.read_text() + "\nnot toml [[[\n")
        digest = (await client.status()).policy_digest
        process.reload()
        log = state.state_dir / "audit.jsonl"
        for _ in range(600):
            if any(line["decision"] == "policy_reload_failed" for line in read_lines(log)):
                break
            await asyncio.sleep(0.05)
        assert (await client.status()).policy_digest == digest  # the old policy stays
    finally:
        await client.close()
    decisions = [line["decision"] for line in read_lines(state.state_dir / "audit.jsonl")]
    assert decisions.count("policy_loaded") >= 2 and "policy_reload_failed" in decisions


def test_a_wrong_passphrase_stops_start_up_without_saying_the_passphrase(
    signer_state: MakeSigner, signer_processes: list[SignerProcess]
) -> None:
    state = signer_state(_networks())
    state.passphrase_file.write_bytes(b"definitely not it\n")
    process = SignerProcess(state)
    signer_processes.append(process)
    with pytest.raises(RuntimeError, match="does not open the keystore"):
        process.start()
    assert process.process is not None and process.process.wait(10) == 2
    assert process.log is not None
    assert "definitely not it" not in process.log.read_text()
    assert not state.socket.exists()


async def test_the_log_never_holds_the_passphrase(
    signer_state: MakeSigner, signer_processes: list[SignerProcess]
) -> None:
    state = signer_state(_networks())
    process = SignerProcess(state).start()
    signer_processes.append(process)
    client = process.client()
    try:
        _, hot = await _accounts(client)
        await client.sign(_request("p", _hot_key(hot), _tx(STRANGER, 1, 0)))
    finally:
        await client.close()
    process.stop()
    assert process.log is not None
    for text in (process.log.read_text(), (state.state_dir / "audit.jsonl").read_text()):
        assert THROWAWAY_PASSPHRASE.decode() not in text


# ---- kill -9 in the middle of signing ----------------------------------------------------------
async def _sign_stream(
    client: SocketSigner, key: KeyRef, first_nonce: int, count: int, answers: dict[str, bytes]
) -> None:
    for nonce in range(first_nonce, first_nonce + count):
        request = _request(f"n{nonce}", key, _tx(STRANGER, 10**12, nonce))
        try:
            answers[request.request_id] = (await client.sign(request)).raw
        except SignerUnavailable:
            return  # the signer died under us: what was answered is what the test checks


async def test_kill_9_mid_request_then_restart_answers_the_same_bytes(
    signer_state: MakeSigner, signer_processes: list[SignerProcess], softhsm: SoftHsm
) -> None:
    state = signer_state(_networks())
    process = SignerProcess(state, hsm=softhsm, hsm_token=PROCESS_TOKENS[0]).start()
    signer_processes.append(process)
    client = process.client()
    _, hot = await _accounts(client, KeyStoreKind.PKCS11)
    await client.close()
    key = hot.key_ref
    # The token signs with a fresh random k each time: equal bytes after a restart can only
    # come from the answer stored before it was sent, never from signing again.
    probe = softhsm.keystore(PROCESS_TOKENS[1])
    label = probe.create_key("cg-probe")
    assert label
    probe_ref = KeyRef(KeyStoreKind.PKCS11, 1, label="cg-probe")
    assert probe.sign_digest(probe_ref, b"\x01" * 32) != probe.sign_digest(probe_ref, b"\x01" * 32)
    probe.close()

    rng = random.Random(20261207)
    answers: dict[str, bytes] = {}
    asked = 0
    for round_number in range(3):
        client = process.client(timeout=5)
        streams = [
            asyncio.create_task(_sign_stream(client, key, asked + 100 * s, 100, answers))
            for s in range(3)
        ]
        await asyncio.sleep(rng.uniform(0.15, 0.6))
        in_flight = sum(1 for s in streams if not s.done())
        process.kill()  # SIGKILL: no cleanup, the socket file stays behind
        await asyncio.gather(*streams)
        await client.close()
        assert in_flight == 3, "the kill must land while requests are in flight"
        asked += 300
        process.start()
        client = process.client()
        try:
            # Every request id answered before the kill answers the very same bytes...
            for request_id, raw in sorted(answers.items()):
                nonce = int(request_id[1:])
                again = await client.sign(_request(request_id, key, _tx(STRANGER, 10**12, nonce)))
                assert again.raw == raw, f"round {round_number}: {request_id} changed"
            # ...and one different transaction for a nonce signed before is refused.
            some = rng.choice(sorted(answers))
            with pytest.raises(SignerRefused) as refused:
                await client.sign(_request("other", key, _tx(COLD, 1, int(some[1:]))))
            assert refused.value.reason_code == "nonce_used"
        finally:
            await client.close()
        verified = run_signer_command("audit", "verify", "--state-dir", str(state.state_dir))
        assert verified.returncode == 0, verified.stderr
    assert len(answers) >= 9
    # The bytes are what a node needs: the right nonce, sender-recoverable, unique txids.
    txids = {transaction_hash(raw) for raw in answers.values()}
    assert len(txids) == len(answers)
    for request_id, raw in answers.items():
        assert decode_signed(raw).transaction.nonce == int(request_id[1:])
