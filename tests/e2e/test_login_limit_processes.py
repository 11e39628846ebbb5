"""Two real API processes (`chaingate api`) on one PostgreSQL and one real Redis: the dashboard's
per-address sign-in limit is one budget for both, not one per process.

Failed sign-ins alternate between the two processes, each for another (unknown) e-mail so the
per-account lockout never plays a part; the address is refused after the same number of
attempts a single process allows (LOGIN_ATTEMPTS_BURST), not twice as many.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from chaingate.services.dashboard_auth import LOGIN_ATTEMPTS_BURST, LOGIN_ATTEMPTS_PER_SECOND
from tests.support.dashboard import log_in
from tests.support.gateway_process import (
    GatewaySetup,
    PlainProcess,
    sigkill,
    start_plain,
    wait_ready,
    write_networks_file,
)
from tests.support.net import free_port
from tests.support.redis_keys import REDIS_URL, stored_buckets


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_failed_sign_ins_across_two_processes_share_one_limit(
    clean_database_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    networks = write_networks_file(tmp_path / "networks.toml", [])
    shared = {"CHAINGATE_REDIS_URL": REDIS_URL, "CHAINGATE_REDIS_KEY_PREFIX": redis_prefix}
    setups = [
        GatewaySetup(clean_database_url, networks, free_port(), tmp_path / f"api-{n}.log", shared)
        for n in (1, 2)
    ]
    processes: list[PlainProcess] = []
    try:
        processes = [start_plain(setup, "api") for setup in setups]
        for setup, process in zip(setups, processes, strict=True):
            await wait_ready(setup, process)
        clients = [
            httpx.AsyncClient(base_url=setup.base_url, timeout=30, trust_env=False)
            for setup in setups
        ]
        try:
            started = time.monotonic()
            answers: list[int] = []
            for attempt in range(2 * LOGIN_ATTEMPTS_BURST + 2):
                client = clients[attempt % 2]  # process 1, process 2, process 1, ...
                answer = await log_in(client, f"nobody-{attempt}@shop.example", "wrong password!")
                answers.append(answer.status_code)
            elapsed = time.monotonic() - started
        finally:
            for client in clients:
                await client.aclose()
    finally:
        for process in processes:
            sigkill(process)

    assert set(answers) == {401, 429}, answers
    refused_from = answers.index(429)
    # Tokens trickle back at LOGIN_ATTEMPTS_PER_SECOND while the attempts run (argon2 is slow).
    refilled = int(elapsed * LOGIN_ATTEMPTS_PER_SECOND)
    assert LOGIN_ATTEMPTS_BURST <= refused_from <= LOGIN_ATTEMPTS_BURST + refilled, answers
    assert refused_from < 2 * LOGIN_ATTEMPTS_BURST  # what two unshared limiters would allow
    assert answers[refused_from:].count(401) <= refilled, answers
    # Both processes refused: the one that allowed the last attempt and the other one.
    assert {n % 2 for n, status in enumerate(answers) if status == 429} == {0, 1}
    buckets = await stored_buckets(redis_prefix)
    assert f"{redis_prefix}login:ip:127.0.0.1" in buckets
