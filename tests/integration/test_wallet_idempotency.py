"""Issue 11 (smaller ones): wallet registration remembers its Idempotency-Key in the same
transaction as the wallet, as invoices do — on SQLite and PostgreSQL.

The process is "killed" right where main wrote the idempotency record, after the wallet had
committed: nothing releases the claim, and the client retries with the same key once the claim
is stale. The retry must create the wallet (or replay the stored answer), never answer
`409 wallet_exists` for the wallet the first request made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from chaingate.adapters.chains.bitcoin.config import BitcoinNetworkConfig
from chaingate.adapters.chains.bitcoin.derivation import account_key_from_mnemonic
from chaingate.adapters.chains.bitcoin.params import BUILT_IN
from chaingate.adapters.db.repositories.idempotency import IdempotencyRepository
from chaingate.adapters.db.tables import wallets
from chaingate.entrypoints.api import idempotent
from chaingate.services.idempotency import STALE_AFTER
from tests.support.clock import SteerableClock
from tests.support.gateway import Gateway, running_gateway

NETWORK = BitcoinNetworkConfig(
    name="ltc", chain="litecoin", chain_network="regtest", rpc_urls=["http://127.0.0.1:9"]
)
KEY = account_key_from_mnemonic(
    "legal winner thank year wave sausage worth useful legal winner thank yellow",
    BUILT_IN[("litecoin", "regtest")],
)
BODY = {"network": "ltc", "xpub": KEY}


class ProcessKilled(Exception):
    """Stands for SIGKILL: the request stops here and nothing after it runs."""


@pytest.fixture
def clock() -> SteerableClock:
    return SteerableClock(datetime.now(UTC))


@pytest.fixture
async def gateway(clean_database_url: str, clock: SteerableClock) -> AsyncIterator[Gateway]:
    async with running_gateway(clean_database_url, [NETWORK], clock=clock) as gw:
        yield gw


async def wallet_count(gateway: Gateway) -> int:
    async with gateway.container.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(wallets))).scalar_one())


async def test_a_crash_before_the_key_is_remembered_is_retried_not_refused(
    gateway: Gateway, clock: SteerableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await gateway.merchant(with_wallets=False)

    async def killed(self: IdempotencyRepository, *args: Any, **kwargs: Any) -> bool:
        raise ProcessKilled

    async def nothing_released(*args: Any, **kwargs: Any) -> None:
        """A killed process releases no claim."""

    monkeypatch.setattr(IdempotencyRepository, "complete", killed)
    monkeypatch.setattr(idempotent, "release", nothing_released)
    with pytest.raises(ProcessKilled):
        await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-1"})
    assert await wallet_count(gateway) == 0  # the wallet and its key commit together, or not

    monkeypatch.undo()  # the process restarts
    clock.advance(STALE_AFTER.total_seconds() + 1)  # the dead request's claim goes stale
    retry = await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-1"})
    assert retry.status_code == 201, retry.text
    again = await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-1"})
    assert (again.status_code, again.headers.get("idempotent-replayed")) == (201, "true")
    assert again.json() == retry.json()
    assert await wallet_count(gateway) == 1


async def test_an_answer_lost_after_commit_is_replayed(gateway: Gateway) -> None:
    shop = await gateway.merchant(with_wallets=False)
    first = await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-2"})
    assert first.status_code == 201, first.text
    # The client never saw `first` (the connection dropped) and retries.
    retry = await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-2"})
    assert (retry.status_code, retry.headers.get("idempotent-replayed")) == (201, "true")
    assert retry.json() == first.json()
    fresh_key = await shop.post("/v1/wallets", BODY, **{"Idempotency-Key": "wallet-3"})
    assert (fresh_key.status_code, fresh_key.json()["code"]) == (409, "wallet_exists")
