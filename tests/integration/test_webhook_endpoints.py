"""Managing webhook endpoints: validation, encrypted secrets, merchant isolation, pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Table, func, select

from chaingate.adapters.db.tables import webhook_attempts, webhook_deliveries, webhook_endpoints
from chaingate.adapters.db.uow import Database
from chaingate.adapters.secrets import SecretBox
from chaingate.adapters.ssrf import UrlGuard, WebhookUrlForbidden
from chaingate.domain.errors import Conflict, DomainError, NotFound
from chaingate.domain.events import ALL_EVENT_TYPES, EventType
from chaingate.domain.models import Merchant, WebhookEndpoint
from chaingate.services import webhooks
from chaingate.services.events import emit

NOW = datetime(2025, 1, 1, tzinfo=UTC)
BOX = SecretBox("endpoint-tests-key")


async def _public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]


GUARD = UrlGuard(resolver=_public)
URL = "https://hooks.shop.example/chaingate"


@pytest.fixture
async def db(database: Database) -> Database:
    async with database.uow() as uow:
        for merchant_id in ("mer_alice", "mer_bob"):
            await uow.merchants.add(Merchant(merchant_id, merchant_id, NOW))
        await uow.commit()
    return database


async def create(
    db: Database,
    merchant_id: str = "mer_alice",
    url: str = URL,
    events: list[str] | None = None,
    description: str | None = None,
) -> tuple[WebhookEndpoint, str]:
    async with db.uow() as uow:
        return await webhooks.create_endpoint(
            uow, merchant_id, url, events, description, BOX, GUARD, NOW
        )


async def count(db: Database, table: Table) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_create_returns_the_secret_once_and_stores_it_encrypted(db: Database) -> None:
    endpoint, secret = await create(db, events=["invoice.settled"], description="  shop  ")

    assert secret.startswith("whsec_")
    assert endpoint.url == URL
    assert endpoint.event_types == ("invoice.settled",)
    assert endpoint.description == "shop"
    assert endpoint.enabled
    async with db.engine.connect() as conn:
        stored = (
            await conn.execute(
                select(webhook_endpoints.c.secret_ciphertext).where(
                    webhook_endpoints.c.id == endpoint.id
                )
            )
        ).scalar_one()
    assert secret not in stored
    assert stored.startswith("v1:")
    assert BOX.decrypt(stored) == secret


async def test_unknown_event_types_are_refused(db: Database) -> None:
    with pytest.raises(webhooks.UnknownEventType) as info:
        await create(db, events=["invoice.settled", "invoice.paid"])
    assert (info.value.code, info.value.status) == ("unknown_event_type", 422)
    assert "invoice.paid" in info.value.detail
    assert await count(db, webhook_endpoints) == 0


async def test_event_types_are_deduplicated_and_empty_means_all(db: Database) -> None:
    some, _ = await create(db, events=["invoice.expired", "invoice.created", "invoice.expired"])
    every, _ = await create(db, events=[])
    assert some.event_types == ("invoice.expired", "invoice.created")
    assert every.event_types == ()
    assert all(every.wants(t) for t in ALL_EVENT_TYPES)


async def test_forbidden_urls_are_refused_at_registration(db: Database) -> None:
    for url in ("http://169.254.169.254/latest", "http://10.0.0.1/", "ftp://shop.example/"):
        with pytest.raises(WebhookUrlForbidden) as info:
            await create(db, url=url)
        assert (info.value.code, info.value.status) == ("webhook_url_forbidden", 422)
    assert await count(db, webhook_endpoints) == 0


async def test_long_descriptions_are_refused(db: Database) -> None:
    with pytest.raises(DomainError) as info:
        await create(db, description="x" * 201)
    assert info.value.code == "invalid_description"


async def test_endpoints_per_merchant_are_capped(db: Database) -> None:
    for _ in range(webhooks.MAX_ENDPOINTS_PER_MERCHANT):
        await create(db)
    with pytest.raises(webhooks.EndpointLimitReached):
        await create(db)
    await create(db, merchant_id="mer_bob")  # the cap is per merchant


async def test_merchants_only_ever_see_their_own_endpoints(db: Database) -> None:
    alice, _ = await create(db)
    bob, _ = await create(db, merchant_id="mer_bob")

    async with db.uow() as uow:
        assert [e.id for e in await webhooks.list_endpoints(uow, "mer_alice")] == [alice.id]
        assert (await webhooks.get_endpoint(uow, "mer_alice", alice.id)).id == alice.id
        with pytest.raises(NotFound):
            await webhooks.get_endpoint(uow, "mer_alice", bob.id)
        with pytest.raises(NotFound):
            await webhooks.update_endpoint(
                uow, "mer_alice", bob.id, guard=GUARD, now=NOW, enabled=False
            )
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await webhooks.rotate_secret(uow, "mer_alice", bob.id, BOX, NOW)
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await webhooks.delete_endpoint(uow, "mer_alice", bob.id)
    async with db.uow() as uow:
        untouched = await webhooks.get_endpoint(uow, "mer_bob", bob.id)
    assert untouched == bob


async def test_update_changes_only_the_given_fields(db: Database) -> None:
    endpoint, _ = await create(db, description="first")
    later = NOW + timedelta(hours=1)

    async with db.uow() as uow:
        updated = await webhooks.update_endpoint(
            uow,
            "mer_alice",
            endpoint.id,
            guard=GUARD,
            now=later,
            url="https://new.shop.example/hook",
            event_types=["invoice.settled"],
        )
    assert updated.url == "https://new.shop.example/hook"
    assert updated.event_types == ("invoice.settled",)
    assert updated.description == "first"
    assert updated.updated_at == later
    assert updated.secret_ciphertext == endpoint.secret_ciphertext

    async with db.uow() as uow:
        cleared = await webhooks.update_endpoint(
            uow, "mer_alice", endpoint.id, guard=GUARD, now=later, description=""
        )
    assert cleared.description is None
    async with db.uow() as uow:
        unchanged = await webhooks.update_endpoint(
            uow, "mer_alice", endpoint.id, guard=GUARD, now=later + timedelta(hours=1)
        )
    assert unchanged == cleared


async def test_a_new_url_is_checked_and_a_refused_one_changes_nothing(db: Database) -> None:
    endpoint, _ = await create(db)
    async with db.uow() as uow:
        with pytest.raises(WebhookUrlForbidden):
            await webhooks.update_endpoint(
                uow,
                "mer_alice",
                endpoint.id,
                guard=GUARD,
                now=NOW,
                url="http://[::ffff:127.0.0.1]/",
                enabled=False,
            )
    async with db.uow() as uow:
        assert await webhooks.get_endpoint(uow, "mer_alice", endpoint.id) == endpoint


async def test_re_enabling_resets_the_failure_count(db: Database) -> None:
    endpoint, _ = await create(db)
    async with db.uow() as uow:
        await uow.webhooks.update_endpoint(endpoint.id, consecutive_failures=7, enabled=False)
        await uow.commit()
    async with db.uow() as uow:
        enabled = await webhooks.update_endpoint(
            uow, "mer_alice", endpoint.id, guard=GUARD, now=NOW, enabled=True
        )
    assert (enabled.enabled, enabled.consecutive_failures) == (True, 0)


async def test_rotation_replaces_the_secret(db: Database) -> None:
    endpoint, old = await create(db)
    async with db.uow() as uow:
        new = await webhooks.rotate_secret(uow, "mer_alice", endpoint.id, BOX, NOW)
    async with db.uow() as uow:
        stored = await webhooks.get_endpoint(uow, "mer_alice", endpoint.id)
    assert new != old
    assert new.startswith("whsec_")
    assert BOX.decrypt(stored.secret_ciphertext) == new


async def emit_events(db: Database, merchant_id: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        async with db.uow() as uow:
            event = await emit(
                uow,
                merchant_id=merchant_id,
                event_type=EventType.INVOICE_CREATED,
                data={"n": i},
                at=NOW + timedelta(seconds=i),
            )
            await uow.commit()
        ids.append(event.id)
    return ids


async def test_deliveries_page_newest_first_with_their_attempts(db: Database) -> None:
    endpoint, _ = await create(db)
    event_ids = await emit_events(db, "mer_alice", 5)
    async with db.uow() as uow:
        (newest,) = await uow.webhooks.deliveries(endpoint.id, before_id=None, limit=1)
        await uow.webhooks.record_attempt(
            newest.id,
            attempted_at=NOW,
            status_code=503,
            duration_ms=12,
            error=None,
            response_excerpt="busy",
            outcome="pending",
            next_attempt_at=NOW + timedelta(seconds=10),
        )
        await uow.commit()

    pages, cursor = [], None
    while True:
        async with db.uow() as uow:
            page = await webhooks.list_deliveries(
                uow, "mer_alice", endpoint.id, cursor=cursor, limit=2
            )
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break

    assert [len(p.deliveries) for p in pages] == [2, 2, 1]
    listed = [r.delivery for p in pages for r in p.deliveries]
    assert [d.event_id for d in listed] == list(reversed(event_ids))
    first = pages[0].deliveries[0]
    assert [(a.status_code, a.duration_ms, a.response_excerpt) for a in first.attempts] == [
        (503, 12, "busy")
    ]
    assert all(r.attempts == () for p in pages for r in p.deliveries[1:])


@pytest.mark.parametrize("limit", [0, -1, 101])
async def test_page_size_is_bounded(db: Database, limit: int) -> None:
    endpoint, _ = await create(db)
    async with db.uow() as uow:
        with pytest.raises(DomainError) as info:
            await webhooks.list_deliveries(uow, "mer_alice", endpoint.id, limit=limit)
    assert info.value.code == "invalid_limit"


async def test_delete_removes_deliveries_and_attempts(db: Database) -> None:
    endpoint, _ = await create(db)
    keep, _ = await create(db, merchant_id="mer_bob")
    await emit_events(db, "mer_alice", 2)
    await emit_events(db, "mer_bob", 1)
    async with db.uow() as uow:
        for delivery in await uow.webhooks.deliveries(endpoint.id, before_id=None, limit=10):
            await uow.webhooks.record_attempt(
                delivery.id,
                attempted_at=NOW,
                status_code=200,
                duration_ms=5,
                error=None,
                response_excerpt=None,
                outcome="succeeded",
                next_attempt_at=NOW,
            )
        await uow.commit()

    async with db.uow() as uow:
        await webhooks.delete_endpoint(uow, "mer_alice", endpoint.id)

    assert await count(db, webhook_endpoints) == 1
    assert await count(db, webhook_deliveries) == 1  # bob's
    assert await count(db, webhook_attempts) == 0
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await webhooks.get_endpoint(uow, "mer_alice", endpoint.id)
        assert (await webhooks.get_endpoint(uow, "mer_bob", keep.id)).id == keep.id


async def test_redeliver_refuses_while_the_endpoint_is_disabled(db: Database) -> None:
    endpoint, _ = await create(db)
    await emit_events(db, "mer_alice", 1)
    async with db.uow() as uow:
        (delivery,) = await uow.webhooks.deliveries(endpoint.id, before_id=None, limit=10)
    async with db.uow() as uow:
        await webhooks.update_endpoint(
            uow, "mer_alice", endpoint.id, guard=GUARD, now=NOW, enabled=False
        )
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await webhooks.redeliver(uow, "mer_alice", delivery.id, NOW)
