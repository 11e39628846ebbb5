"""The dispatcher end to end: real database (SQLite and PostgreSQL), real HTTP server, real sender.

Time is a ManualClock, moved past each retry; settings keep backoff and timeouts short.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from chaingate.adapters.db.tables import (
    events,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from chaingate.adapters.db.uow import Database, UnitOfWork
from chaingate.adapters.secrets import SecretBox
from chaingate.adapters.ssrf import UrlGuard, WebhookUrlForbidden
from chaingate.adapters.webhook_sender import WebhookSender
from chaingate.config import Settings
from chaingate.domain.errors import NotFound
from chaingate.domain.events import EventType
from chaingate.domain.models import Merchant, WebhookEndpoint
from chaingate.entrypoints.workers.dispatcher import run_dispatcher
from chaingate.services import webhooks
from chaingate.services.dispatch import dispatch_due, lease_duration
from chaingate.services.events import emit
from tests.support.webhook_receiver import (
    Hold,
    ManualClock,
    Received,
    Receiver,
    Reply,
    always,
    closed_port,
    fail_first,
)

DEV_GUARD = UrlGuard(allow_loopback=True)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        secret_key="integration-test-key",
        dev_mode=True,
        webhook_timeout_seconds=0.5,
        webhook_retry_base_seconds=1.0,
        webhook_retry_max_seconds=4.0,
        webhook_retry_window_seconds=3600.0,
        webhook_concurrency=8,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox("integration-test-key")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
async def sender(settings: Settings) -> AsyncIterator[WebhookSender]:
    async with httpx.AsyncClient() as client:
        yield WebhookSender(client, DEV_GUARD, settings.webhook_timeout_seconds)


class Gateway:
    """The pieces a test drives, bundled so each step reads as one line."""

    def __init__(
        self,
        db: Database,
        sender: WebhookSender,
        box: SecretBox,
        clock: ManualClock,
        settings: Settings,
    ) -> None:
        self.db, self.sender, self.box, self.clock, self.settings = (
            db,
            sender,
            box,
            clock,
            settings,
        )

    async def merchant(self, merchant_id: str) -> str:
        async with self.db.uow() as uow:
            await uow.merchants.add(Merchant(merchant_id, merchant_id, self.clock.now()))
            await uow.commit()
        return merchant_id

    async def endpoint(
        self, merchant_id: str, url: str, events: list[str] | None = None
    ) -> tuple[WebhookEndpoint, str]:
        async with self.db.uow() as uow:
            return await webhooks.create_endpoint(
                uow, merchant_id, url, events, None, self.box, DEV_GUARD, self.clock.now()
            )

    async def emit(self, merchant_id: str, n: int = 1) -> list[str]:
        ids = []
        async with self.db.uow() as uow:
            for i in range(n):
                event = await emit(
                    uow,
                    merchant_id=merchant_id,
                    event_type=EventType.INVOICE_SETTLED,
                    data={"object": "invoice", "n": i, "note": "ünïcode"},
                    at=self.clock.now(),
                )
                ids.append(event.id)
            await uow.commit()
        return ids

    async def dispatch(self, sender: WebhookSender | None = None) -> int:
        return await dispatch_due(
            self.db, sender or self.sender, self.box, self.clock, self.settings
        )

    async def run_until_settled(self, rounds: int = 40) -> None:
        """Dispatch, then move time past any possible backoff, until nothing is pending."""
        for _ in range(rounds):
            await self.dispatch()
            if not await self.pending():
                return
            self.clock.advance(self.settings.webhook_retry_max_seconds + 0.001)
        raise AssertionError("deliveries still pending")

    async def pending(self) -> int:
        rows = await self.rows(webhook_deliveries, webhook_deliveries.c.status == "pending")
        return len(rows)

    async def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as conn:
            result = await conn.execute(select(table).where(*where))
            return [dict(r) for r in result.mappings()]

    async def delivery(self, delivery_id: str) -> dict[str, Any]:
        (row,) = await self.rows(webhook_deliveries, webhook_deliveries.c.id == delivery_id)
        return row

    async def deliveries_for(self, endpoint_id: str) -> list[dict[str, Any]]:
        return await self.rows(webhook_deliveries, webhook_deliveries.c.endpoint_id == endpoint_id)

    async def attempts(self, delivery_id: str) -> list[dict[str, Any]]:
        rows = await self.rows(webhook_attempts, webhook_attempts.c.delivery_id == delivery_id)
        return sorted(rows, key=lambda r: r["id"])


@pytest.fixture
def gw(
    database: Database,
    sender: WebhookSender,
    box: SecretBox,
    clock: ManualClock,
    settings: Settings,
) -> Gateway:
    return Gateway(database, sender, box, clock, settings)


def signature_is_valid(request: Received, secret: str) -> bool:
    """Checked the way a merchant would, with nothing but hmac and the raw body."""
    parts = dict(item.split("=", 1) for item in request.headers["chaingate-signature"].split(","))
    message = parts["t"].encode() + b"." + request.body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


async def test_flaky_receiver_gets_every_event_exactly_once_successfully(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, secret = await gw.endpoint(merchant, receiver.route("/hook", fail_first(2, 500)))
    event_ids = await gw.emit(merchant, 3)

    await gw.run_until_settled()

    got = receiver.at("/hook")
    assert len(got) == 9  # 3 events x (500, 500, 200)
    bodies = {e["id"]: e["body"] for e in await gw.rows(events)}
    for event_id in event_ids:
        tries = [r for r in got if r.event_id == event_id]
        assert len(tries) == 3
        for request in tries:
            assert request.body == bodies[event_id].encode()  # byte for byte, every time
            assert json.loads(request.body)["id"] == event_id
            assert signature_is_valid(request, secret)
            assert request.headers["chaingate-event-type"] == "invoice.settled"
            assert request.headers["content-type"] == "application/json"
            assert request.headers["user-agent"].startswith("ChainGate-Webhooks/")
        assert len({r.headers["chaingate-delivery-id"] for r in tries}) == 1
    deliveries = await gw.deliveries_for(endpoint.id)
    assert sorted(d["event_id"] for d in deliveries) == sorted(event_ids)
    for delivery in deliveries:
        assert delivery["status"] == "succeeded"
        assert delivery["attempt_count"] == 3
        assert delivery["delivered_at"] is not None
        attempts = await gw.attempts(delivery["id"])
        assert [a["status_code"] for a in attempts] == [500, 500, 200]
        assert all(a["duration_ms"] >= 0 and a["error"] is None for a in attempts)
        assert [a["response_excerpt"] for a in attempts] == ["ok", "ok", "ok"]
    # Nothing more goes out once everything succeeded.
    gw.clock.advance(86_400)
    assert await gw.dispatch() == 0
    assert len(receiver.at("/hook")) == 9


async def test_a_4xx_is_not_retried(gw: Gateway, receiver: Receiver) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/reject", always(400)))
    await gw.emit(merchant)

    assert await gw.dispatch() == 1
    gw.clock.advance(3600)
    assert await gw.dispatch() == 0

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert (delivery["status"], delivery["attempt_count"]) == ("failed", 1)
    assert delivery["last_status_code"] == 400
    assert [a["status_code"] for a in await gw.attempts(delivery["id"])] == [400]
    assert len(receiver.at("/reject")) == 1


async def test_a_redirect_is_recorded_retried_and_never_followed(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    target = receiver.route("/target", always(200))

    def moving(request: Received, earlier: list[Received]) -> Reply:
        # A deploy artefact: two redirects, then the endpoint answers again where it was.
        return Reply(308, headers={"Location": target}) if len(earlier) < 2 else Reply(200)

    moved = receiver.route("/moved", moving)
    endpoint, _ = await gw.endpoint(merchant, moved)
    await gw.emit(merchant)

    assert await gw.dispatch() == 1
    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert (delivery["status"], delivery["attempt_count"]) == ("pending", 1)
    assert delivery["last_status_code"] == 308
    await gw.run_until_settled()

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 3)
    attempts = await gw.attempts(delivery["id"])
    assert [a["status_code"] for a in attempts] == [308, 308, 200]
    assert all("redirect not followed" in a["error"] for a in attempts[:2])
    assert len(receiver.at("/moved")) == 3
    assert receiver.at("/target") == []  # never followed


async def test_429_is_retried(gw: Gateway, receiver: Receiver) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/busy", fail_first(1, 429)))
    await gw.emit(merchant)

    await gw.run_until_settled()

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in await gw.attempts(delivery["id"])] == [429, 200]


async def test_a_timeout_is_recorded_and_retried(gw: Gateway, receiver: Receiver) -> None:
    merchant = await gw.merchant("mer_a")
    slow_once = fail_first(1, 200, delay=2.0)  # answers only after the 0.5 s timeout
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/slow", slow_once))
    await gw.emit(merchant)

    await gw.run_until_settled()

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "succeeded"
    first, second = await gw.attempts(delivery["id"])
    assert first["status_code"] is None
    assert first["error"] == "timed out after 0.5s"
    assert 400 <= first["duration_ms"] < 2000
    assert second["status_code"] == 200


async def test_retries_stop_when_the_window_closes(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_retry_window_seconds = 20.0
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/down", always(503)))
    await gw.emit(merchant)
    created = gw.clock.now()

    await gw.run_until_settled(rounds=100)

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "failed"
    attempts = await gw.attempts(delivery["id"])
    assert len(attempts) >= 5  # up to 4 s apart over 20 s
    assert delivery["attempt_count"] == len(attempts) == len(receiver.at("/down"))
    assert all(a["status_code"] == 503 for a in attempts)
    assert attempts[-1]["attempted_at"] >= created + timedelta(seconds=20)
    assert all(a["attempted_at"] < created + timedelta(seconds=20) for a in attempts[:-1])


async def test_a_delivery_older_than_the_window_fails_on_its_next_error(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/down", always(500)))
    await gw.emit(merchant)
    gw.clock.advance(settings.webhook_retry_window_seconds + 1)  # e.g. the gateway was down

    assert await gw.dispatch() == 1

    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert (delivery["status"], delivery["attempt_count"]) == ("failed", 1)


async def test_dead_endpoints_with_long_queues_do_not_crowd_out_a_healthy_one(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_concurrency = 4  # a batch of 4, at most 1 per endpoint
    merchant = await gw.merchant("mer_a")
    dead = [
        (await gw.endpoint(merchant, f"http://127.0.0.1:{closed_port()}/gone"))[0] for _ in range(4)
    ]
    await gw.emit(merchant, 5)  # 20 deliveries queued for dead endpoints
    assert await gw.dispatch() == 4  # one per dead endpoint: each refuses the connection
    healthy, _ = await gw.endpoint(merchant, receiver.route("/ok", always(200)))
    gw.clock.advance(1)
    await gw.emit(merchant)  # the newest delivery of all, behind 16+ older due ones

    assert await gw.dispatch() == 4

    (delivery,) = await gw.deliveries_for(healthy.id)
    assert delivery["status"] == "succeeded"
    tried = [d for e in dead for d in await gw.deliveries_for(e.id) if d["attempt_count"]]
    assert len(tried) == 4 + 3
    assert all(d["status"] == "pending" and d["last_status_code"] is None for d in tried)
    assert all("ConnectError" in (d["last_error"] or "") for d in tried)


async def test_an_endpoint_failing_for_long_gets_one_probe_per_batch(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/down", always(500)))
    await gw.emit(merchant, 6)

    assert await gw.dispatch() == 2  # per-endpoint cap: 8 // 4
    assert await gw.dispatch() == 2
    async with gw.db.uow() as uow:
        await uow.webhooks.update_endpoint(endpoint.id, consecutive_failures=5)
        await uow.commit()
    assert await gw.dispatch() == 1  # breaker open: a single probe
    receiver.route("/down", always(200))
    assert await gw.dispatch() == 1  # the probe succeeds and closes the breaker
    gw.clock.advance(5)  # every earlier failure is due again
    assert await gw.dispatch() == 2  # closed: the full per-endpoint share again
    await gw.run_until_settled()
    assert [d["status"] for d in await gw.deliveries_for(endpoint.id)] == ["succeeded"] * 6


async def test_a_hanging_endpoint_does_not_delay_a_healthy_one_in_the_same_batch(
    gw: Gateway, receiver: Receiver, settings: Settings, database: Database
) -> None:
    # The hanging request stays open until the test releases it (the timeout is far away), so
    # "still waiting" below is a fact, not a race against the clock.
    settings.webhook_timeout_seconds = 60.0
    hold = Hold()
    async with httpx.AsyncClient() as client:
        gw.sender = WebhookSender(client, DEV_GUARD, settings.webhook_timeout_seconds)
        merchant = await gw.merchant("mer_a")
        hanging, _ = await gw.endpoint(merchant, receiver.route("/hang", hold))
        healthy, _ = await gw.endpoint(merchant, receiver.route("/fast", always(200)))
        await gw.emit(merchant)

        batch = asyncio.create_task(gw.dispatch())
        try:
            assert await asyncio.to_thread(receiver.wait_for, "/hang"), "never sent to /hang"
            while (await gw.deliveries_for(healthy.id))[0]["status"] != "succeeded":
                assert not batch.done(), "the batch ended without recording the healthy one"
                await asyncio.sleep(0.02)  # the database offers nothing to await
            # The healthy delivery is recorded while the hanging request is still open.
            assert not batch.done()
            (slow,) = await gw.deliveries_for(hanging.id)
            assert slow["attempt_count"] == 0
        finally:
            hold.release()
        assert await batch == 2
        (slow,) = await gw.deliveries_for(hanging.id)
        assert (slow["status"], slow["attempt_count"]) == ("succeeded", 1)


async def test_a_claim_that_is_never_recorded_is_sent_again_after_its_lease(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/hook", always(200)))
    (event_id,) = await gw.emit(merchant)
    lease = lease_duration(settings)

    # A dispatcher claims the delivery and dies before sending or recording anything.
    async with gw.db.uow() as uow:
        claimed = await uow.webhooks.claim_due(
            gw.clock.now(), limit=10, per_endpoint=10, lease=lease
        )
        await uow.commit()
    assert [c.event_id for c in claimed] == [event_id]

    assert await gw.dispatch() == 0  # still leased
    gw.clock.advance(lease.total_seconds() - 1)
    assert await gw.dispatch() == 0
    gw.clock.advance(2)
    assert await gw.dispatch() == 1

    (request,) = receiver.at("/hook")
    assert request.event_id == event_id
    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert (delivery["status"], delivery["attempt_count"]) == ("succeeded", 1)


async def test_redeliver_sends_a_succeeded_delivery_again(gw: Gateway, receiver: Receiver) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, secret = await gw.endpoint(merchant, receiver.route("/hook", always(200)))
    (event_id,) = await gw.emit(merchant)
    await gw.run_until_settled()
    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "succeeded"

    gw.clock.advance(600)
    async with gw.db.uow() as uow:
        queued = await webhooks.redeliver(uow, merchant, delivery["id"], gw.clock.now())
    assert queued.status == "pending"
    assert await gw.dispatch() == 1

    first, second = receiver.at("/hook")
    assert first.event_id == second.event_id == event_id
    assert first.body == second.body
    assert signature_is_valid(second, secret)
    assert first.headers["chaingate-signature"] != second.headers["chaingate-signature"]
    after = await gw.delivery(delivery["id"])
    assert (after["status"], after["attempt_count"]) == ("succeeded", 2)
    assert len(await gw.attempts(delivery["id"])) == 2


async def test_a_merchant_cannot_redeliver_another_merchants_delivery(
    gw: Gateway, receiver: Receiver
) -> None:
    alice, bob = await gw.merchant("mer_alice"), await gw.merchant("mer_bob")
    endpoint, _ = await gw.endpoint(alice, receiver.route("/alice", always(200)))
    await gw.emit(alice)
    await gw.run_until_settled()
    (delivery,) = await gw.deliveries_for(endpoint.id)

    for merchant, delivery_id in ((bob, delivery["id"]), (alice, "whd_does_not_exist")):
        async with gw.db.uow() as uow:
            with pytest.raises(NotFound):
                await webhooks.redeliver(uow, merchant, delivery_id, gw.clock.now())
    async with gw.db.uow() as uow:
        with pytest.raises(NotFound):
            await webhooks.list_deliveries(uow, bob, endpoint.id)

    assert await gw.dispatch() == 0
    assert len(receiver.at("/alice")) == 1
    assert (await gw.delivery(delivery["id"]))["status"] == "succeeded"


async def test_the_guard_decides_whether_a_loopback_receiver_is_reachable(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    merchant = await gw.merchant("mer_a")
    url = receiver.route("/hook", always(200))
    strict = UrlGuard()
    async with gw.db.uow() as uow:
        with pytest.raises(WebhookUrlForbidden):
            await webhooks.create_endpoint(
                uow, merchant, url, None, None, gw.box, strict, gw.clock.now()
            )
    endpoint, _ = await gw.endpoint(merchant, url)  # dev mode allows loopback
    await gw.emit(merchant)

    # Checked again before every attempt: a strict dispatcher refuses to send it.
    async with httpx.AsyncClient() as client:
        strict_sender = WebhookSender(client, strict, settings.webhook_timeout_seconds)
        assert await gw.dispatch(strict_sender) == 1
    assert receiver.at("/hook") == []
    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "pending"  # retried later: the answer may change
    assert delivery["last_error"].startswith("refused: ")

    gw.clock.advance(settings.webhook_retry_max_seconds)
    assert await gw.dispatch() == 1  # the dev-mode sender reaches it
    assert len(receiver.at("/hook")) == 1


async def test_disabled_endpoints_are_skipped_until_enabled_again(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/hook", always(200)))
    await gw.emit(merchant)
    async with gw.db.uow() as uow:
        await webhooks.update_endpoint(
            uow, merchant, endpoint.id, guard=DEV_GUARD, now=gw.clock.now(), enabled=False
        )
    await gw.emit(merchant)  # not subscribed while disabled

    assert await gw.dispatch() == 0
    assert receiver.at("/hook") == []

    async with gw.db.uow() as uow:
        await webhooks.update_endpoint(
            uow, merchant, endpoint.id, guard=DEV_GUARD, now=gw.clock.now(), enabled=True
        )
    assert await gw.dispatch() == 1
    assert len(receiver.at("/hook")) == 1


async def test_consecutive_failures_are_counted_and_reset_by_a_success(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/flaky", fail_first(2, 502)))
    await gw.emit(merchant)

    async def failures() -> int:
        (row,) = await gw.rows(webhook_endpoints, webhook_endpoints.c.id == endpoint.id)
        return int(row["consecutive_failures"])

    counts = []
    for _ in range(3):
        await gw.dispatch()
        counts.append(await failures())
        gw.clock.advance(5)
    assert counts == [1, 2, 0]


async def test_a_rotated_secret_signs_the_next_attempt(gw: Gateway, receiver: Receiver) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, old = await gw.endpoint(merchant, receiver.route("/hook", fail_first(1, 500)))
    await gw.emit(merchant)
    await gw.dispatch()
    async with gw.db.uow() as uow:
        new = await webhooks.rotate_secret(uow, merchant, endpoint.id, gw.box, gw.clock.now())
    await gw.run_until_settled()

    first, second = receiver.at("/hook")
    assert signature_is_valid(first, old)
    assert not signature_is_valid(first, new)
    assert signature_is_valid(second, new)
    assert not signature_is_valid(second, old)


async def test_an_unreadable_secret_is_recorded_and_retried(
    gw: Gateway, receiver: Receiver
) -> None:
    merchant = await gw.merchant("mer_a")
    endpoint, _ = await gw.endpoint(merchant, receiver.route("/hook", always(200)))
    await gw.emit(merchant)
    gw.box = SecretBox("a-different-operator-key")

    assert await gw.dispatch() == 1

    assert receiver.at("/hook") == []
    (delivery,) = await gw.deliveries_for(endpoint.id)
    assert delivery["status"] == "pending"
    assert delivery["last_error"].startswith("signing secret unreadable")


async def test_the_worker_delivers_survives_database_errors_and_stops(
    gw: Gateway, receiver: Receiver, database: Database, settings: Settings
) -> None:
    merchant = await gw.merchant("mer_a")
    await gw.endpoint(merchant, receiver.route("/hook", always(200)))
    (event_id,) = await gw.emit(merchant)

    class BlippingDatabase(Database):
        """Fails the first unit of work, like a dropped connection."""

        blips = 1

        def uow(self) -> UnitOfWork:
            if self.blips:
                self.blips -= 1
                raise ConnectionError("database went away")
            return super().uow()

    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_dispatcher(
            BlippingDatabase(database.engine), gw.sender, gw.box, gw.clock, settings, stop
        )
    )
    try:
        (request,) = await asyncio.to_thread(receiver.wait_for, "/hook")
        assert request.event_id == event_id
        assert not worker.done()
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=2)
    assert worker.exception() is None


async def test_the_worker_keeps_sending_while_a_batch_hangs(
    gw: Gateway, receiver: Receiver, settings: Settings
) -> None:
    # /hang holds every request open until the test releases it; the timeout is far away.
    settings.webhook_timeout_seconds = 60.0
    hold = Hold()
    merchant = await gw.merchant("mer_a")
    hanging, _ = await gw.endpoint(merchant, receiver.route("/hang", hold))
    (stuck_event,) = await gw.emit(merchant)

    async def stuck_delivery() -> dict[str, Any]:
        rows = await gw.deliveries_for(hanging.id)
        return next(d for d in rows if d["event_id"] == stuck_event)

    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        sender = WebhookSender(client, DEV_GUARD, settings.webhook_timeout_seconds)
        worker = asyncio.create_task(
            run_dispatcher(gw.db, sender, gw.box, gw.clock, settings, stop)
        )
        try:
            # The premise: the first batch is stuck inside the request to /hang.
            [stuck] = await asyncio.to_thread(receiver.wait_for, "/hang")
            assert stuck.event_id == stuck_event
            await gw.endpoint(merchant, receiver.route("/fast", always(200)))
            await gw.emit(merchant)  # due while the first batch still waits
            fast = await asyncio.to_thread(receiver.wait_for, "/fast")
            assert fast, "the new delivery waited for the hanging batch"
            assert (await stuck_delivery())["attempt_count"] == 0  # first batch still busy
        finally:
            hold.release()
            stop.set()
            await asyncio.wait_for(worker, timeout=10)
    # Released before the stop, the held attempt ended and was recorded during the drain.
    stuck_row = await stuck_delivery()
    assert (stuck_row["status"], stuck_row["attempt_count"]) == ("succeeded", 1)
