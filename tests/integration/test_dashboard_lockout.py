"""The login lockout holds against parallel guesses (a regression: each guess used to decide the
lock from the failure count it read before its slow password check, so none ever locked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from chaingate.adapters.db.uow import Database
from chaingate.services import dashboard_auth
from chaingate.services.dashboard_auth import LOCKOUT, MAX_FAILED_LOGINS
from tests.support.clock import SteerableClock
from tests.support.dashboard import PASSWORD, add_user, log_in
from tests.support.gateway import (
    PRODUCTION_BASE_URL,
    Gateway,
    MerchantHandle,
    running_production_gateway,
)

ALICE = "alice@shop.example"
GUESSES = 12


@pytest.fixture
def clock() -> SteerableClock:
    return SteerableClock(datetime.now(UTC))


@pytest.fixture
async def gateway(clean_database_url: str, clock: SteerableClock) -> AsyncIterator[Gateway]:
    async with running_production_gateway(clean_database_url, [], clock=clock) as gw:
        yield gw


@pytest.fixture
async def shop(gateway: Gateway) -> MerchantHandle:
    handle = await gateway.merchant("Alice's shop")
    await add_user(gateway.container.db, handle.merchant_id, ALICE, gateway.container.clock.now())
    return handle


def browser_at(gateway: Gateway, address: str) -> httpx.AsyncClient:
    """A browser of its own connecting from `address`: its own cookies, its own rate bucket."""
    transport = gateway.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    from_address = httpx.ASGITransport(app=transport.app, client=(address, 40000))
    return httpx.AsyncClient(transport=from_address, base_url=PRODUCTION_BASE_URL)


async def failures_and_lock(db: Database, email: str) -> tuple[int, datetime | None]:
    async with db.uow() as uow:
        user = await uow.users.by_email(email)
    assert user is not None
    return user.failed_logins, user.locked_until


async def test_parallel_guesses_from_many_addresses_lock_the_account(
    gateway: Gateway, clock: SteerableClock, shop: MerchantHandle
) -> None:
    # Each guess from another address, so the per-address throttle lets every one through.
    browsers = [browser_at(gateway, f"198.51.100.{n + 1}") for n in range(GUESSES)]
    try:
        answers = await asyncio.gather(
            *(log_in(b, ALICE, f"wrong guess number {n}") for n, b in enumerate(browsers))
        )
    finally:
        for browser in browsers:
            await browser.aclose()
    assert [a.status_code for a in answers] == [401] * GUESSES
    failures, locked_until = await failures_and_lock(gateway.container.db, ALICE)
    assert failures == GUESSES
    assert locked_until is not None and locked_until > clock.now()

    async with browser_at(gateway, "203.0.113.7") as owner:
        refused = await log_in(owner, ALICE)
        assert refused.status_code == 401
        assert "Wrong e-mail, password or code, or too many attempts." in refused.text
        assert "cg_session" not in owner.cookies
        clock.advance(LOCKOUT.total_seconds() + 60)  # the lockout is over
        assert (await log_in(owner, ALICE)).status_code == 303
    assert await failures_and_lock(gateway.container.db, ALICE) == (0, None)


async def test_parallel_guesses_at_the_service_lock_at_the_limit(
    gateway: Gateway, shop: MerchantHandle
) -> None:
    container = gateway.container
    db, now = container.db, container.clock.now()
    ports = {"box": container.secret_box, "passwords": container.passwords, "totp": container.totp}
    tokens = await asyncio.gather(
        *(
            dashboard_auth.log_in(db, ALICE, f"wrong guess number {n}", now, **ports)
            for n in range(GUESSES)
        )
    )
    assert tokens == [None] * GUESSES
    assert await failures_and_lock(db, ALICE) == (GUESSES, now + LOCKOUT)
    later = now + LOCKOUT - timedelta(seconds=1)
    assert await dashboard_auth.log_in(db, ALICE, PASSWORD, later, **ports) is None
    assert await dashboard_auth.log_in(db, ALICE, PASSWORD, now + LOCKOUT, **ports) is not None


async def test_a_success_cannot_clear_a_lock_set_while_it_was_checked(
    gateway: Gateway, shop: MerchantHandle
) -> None:
    db = gateway.container.db
    now = gateway.container.clock.now()
    async with db.uow() as uow:
        user = await uow.users.by_email(ALICE)
        assert user is not None
        for n in range(1, MAX_FAILED_LOGINS + 1):
            counted = await uow.users.record_failure(
                user.id, max_failures=MAX_FAILED_LOGINS, lock_until=now + LOCKOUT
            )
            assert counted == (n, now + LOCKOUT if n == MAX_FAILED_LOGINS else None)
        # The login that read the account before the lock now tries to record its success.
        assert not await uow.users.record_success(user.id, now, user.password_hash, now=now)
        await uow.commit()
    assert await failures_and_lock(db, ALICE) == (MAX_FAILED_LOGINS, now + LOCKOUT)
    async with db.uow() as uow:
        after = now + LOCKOUT
        assert await uow.users.record_success(user.id, after, user.password_hash, now=after)
        await uow.commit()
    assert await failures_and_lock(db, ALICE) == (0, None)
