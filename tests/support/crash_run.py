"""The driver of the crash-safety test: a merchant's client, a payer and a SIGKILL schedule.

One `CrashRun` owns the gateway process. Each `cycle(phase)` restarts it, does what the phase
needs (pay, mine, create invoices, wait for a webhook...) and SIGKILLs it at that phase's
moment. Every kill records whether it really landed in its phase (see `Kill.landed`); a kill
that missed (the gateway caught up first, no webhook came, the request had already ended) is
kept on record and the cycle aims again, at most `MAX_AIMS` times. The client behaves like a
careful merchant: every invoice has its own Idempotency-Key
(also its order_id) and the exact same request is retried after a crash until it gets an
answer. Nothing here decides whether the gateway was right: tests/e2e/test_crash_safety.py
compares the end state with the chain and with what this driver recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import httpx

from tests.support.anvil import AnvilNode
from tests.support.db_probe import DbProbe
from tests.support.gateway_process import (
    GatewayProcess,
    GatewaySetup,
    Zygote,
    log_tail,
    sigkill,
    start_plain,
    wait_gone,
    wait_ready,
)
from tests.support.payer import Payer, SentTransfer, decimal_string, split
from tests.support.webhook_audit import Audit

DECIMALS = {"ETH": 18, "USDT": 6}
NETWORK = "anvil"
EXPIRES_IN = 29 * 86_400  # far enough that nothing expires during the run
STALE_CLAIM = timedelta(seconds=61)  # services/idempotency.py: STALE_AFTER is 60 s
MAX_AIMS = 5  # restarts one scheduled kill may take to land in its phase
SPARE_PLANS = 4  # plans kept back beyond one per api_create kill, for kills that missed
WEBHOOK_WAIT = 3.0  # seconds to wait for a webhook request before provoking another


@dataclass
class Plan:
    """One invoice the merchant wants, and how the payer will pay it."""

    key: str  # Idempotency-Key, also the order_id
    currency: str
    amount: int  # base units due
    parts: list[int]  # the payments, in base units
    body: bytes  # the exact request, byte for byte the same on every retry
    invoice_id: str | None = None
    address: str | None = None
    attempts: list[str] = field(default_factory=list)  # how each POST ended
    stuck: bool = False  # its claim belongs to a killed request (409 until it turns stale)


@dataclass(frozen=True)
class Kill:
    number: int
    phase: str
    detail: str
    at: float  # seconds since the run started
    # Whether the moment was the phase's, by evidence taken at the kill: the API port still
    # closed (startup), the cursor between start and tip (catch-up), the receiver's trap fired
    # (webhook), the POST still running (invoice POST). A miss is a kill all the same.
    landed: bool = True


def make_plans(count: int, rng: random.Random) -> list[Plan]:
    """Invoices in ETH and USDT paid exactly, short or over, in one to three payments."""
    plans = []
    for index in range(count):
        currency = "ETH" if index % 2 == 0 else "USDT"
        step = 10**14 if currency == "ETH" else 10**4
        amount = rng.randint(1, 400) * step
        kind = rng.choice(["exact", "exact", "short", "over"])
        total = {
            "exact": amount,
            "short": amount - rng.randint(1, max(1, amount // 2)),
            "over": amount + rng.randint(1, amount),
        }[kind]
        key = f"order-{index:03d}-{rng.getrandbits(32):08x}"
        body = json.dumps(
            {
                "amount": decimal_string(amount, DECIMALS[currency]),
                "currency": currency,
                "network": NETWORK,
                "order_id": key,
                "expires_in": EXPIRES_IN,
            }
        ).encode()
        plans.append(Plan(key, currency, amount, split(total, rng.randint(1, 3), rng), body))
    return plans


class CrashRun:
    def __init__(
        self,
        *,
        node: AnvilNode,
        setup: GatewaySetup,
        zygote: Zygote,
        probe: DbProbe,
        payer: Payer,
        audit: Audit,
        api_key: str,
        plans: list[Plan],
        rng: random.Random,
    ) -> None:
        self.node, self.setup, self.zygote, self.probe = node, setup, zygote, probe
        self.payer, self.audit, self.api_key = payer, audit, api_key
        self.plans, self.rng = plans, rng
        self.process: GatewayProcess | None = None
        self.kills: list[Kill] = []
        self.queue: list[tuple[Plan, int]] = []  # payments not sent yet
        self.noise: list[SentTransfer] = []  # transfers that must credit nothing
        self.unexpected_deaths: list[str] = []
        self.aged_claims = 0  # set by `finish`
        self.ended_leases = 0
        self.post_seconds = 0.03  # how long an undisturbed invoice POST took last time
        self.ready_seconds = 0.25  # how long the last restart took until its API answered
        self.api_kills_left = 0  # set by the test: plans are kept back for those kills
        self.endpoint_ids: list[str] = []  # set by the test: the merchant's webhook endpoints
        # Invoice-POST kills take the three moments in turn (shuffled), so even a short
        # schedule meets each of them.
        modes = ["random", "claimed", "committed"]
        rng.shuffle(modes)
        self._create_modes = itertools.cycle(modes)
        self.started = time.monotonic()

    # -- the merchant's client --------------------------------------------------------------
    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.setup.base_url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
            trust_env=False,
            # No kept-alive sockets: one from a killed server would fail the next request.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def post_invoice(self, plan: Plan, *, drop_answer: bool = False) -> str:
        """POST the plan's invoice under its key once; returns how it ended.

        `drop_answer`: the client loses whatever answer comes (its own crash or timeout), so
        only a retry with the same key can tell it what happened.
        """
        began = time.monotonic()
        try:
            async with self.api() as api:
                answer = await api.post(
                    "/v1/invoices",
                    content=plan.body,
                    headers={"Idempotency-Key": plan.key, "Content-Type": "application/json"},
                )
        except httpx.TransportError:
            outcome = "no answer"
        else:
            outcome = "answer dropped" if drop_answer else self._read_answer(plan, answer)
            if outcome == "created":
                self.post_seconds = time.monotonic() - began
        plan.attempts.append(outcome)
        return outcome

    def _read_answer(self, plan: Plan, answer: httpx.Response) -> str:
        if answer.status_code == 409 and answer.json().get("code") == "idempotency_in_progress":
            plan.stuck = True
            return "in progress"
        assert answer.status_code == 201, f"{plan.key}: {answer.status_code} {answer.text}"
        view = answer.json()
        assert view["order_id"] == plan.key, view
        if plan.invoice_id is not None:
            # Whatever the answer, one key must always name the same invoice.
            assert view["id"] == plan.invoice_id, (plan.key, plan.invoice_id, view["id"])
        else:
            plan.invoice_id, plan.address = view["id"], view["address"]
            self.queue += [(plan, part) for part in plan.parts]
        plan.stuck = False
        return "replayed" if answer.headers.get("idempotent-replayed") == "true" else "created"

    async def retry_unanswered(self) -> None:
        """Retry, after a restart, every request whose answer a kill swallowed."""
        for plan in self.plans:
            if plan.attempts and plan.invoice_id is None and not plan.stuck:
                await self.post_invoice(plan)

    def next_unasked(self) -> Plan | None:
        return next((p for p in self.plans if not p.attempts), None)

    def may_create_freely(self) -> bool:
        """Whether a plan can be spent outside an api_create kill (enough are kept back)."""
        return sum(1 for p in self.plans if not p.attempts) > self.api_kills_left + SPARE_PLANS

    def landed(self) -> Counter[str]:
        """Kills per phase that landed in their phase."""
        return Counter(k.phase for k in self.kills if k.landed)

    def missed(self) -> Counter[str]:
        return Counter(k.phase for k in self.kills if not k.landed)

    # -- the payer -------------------------------------------------------------------------
    async def pay(self, count: int) -> None:
        for _ in range(min(count, len(self.queue))):
            plan, amount = self.queue.pop(self.rng.randrange(len(self.queue)))
            assert plan.address is not None
            await self.payer.send(plan.address, plan.currency, amount)

    async def send_noise(self) -> None:
        """A transfer that must count for nothing, in turn: to an address no invoice owns, or
        to an invoice in the other asset (recorded as `wrong_asset`, never counted)."""
        targets = [p for p in self.plans if p.address is not None]
        if len(self.noise) % 2 == 0 or not targets:
            stranger = "0x" + self.rng.getrandbits(160).to_bytes(20, "big").hex()
            sent = await self.payer.send(stranger, "ETH", 10**15)
        else:
            plan = self.rng.choice(targets)
            assert plan.address is not None
            other = "USDT" if plan.currency == "ETH" else "ETH"
            sent = await self.payer.send(plan.address, other, 10**15 if other == "ETH" else 10**6)
        self.noise.append(sent)

    # -- the process -----------------------------------------------------------------------
    def spawn(self) -> GatewayProcess:
        self.process = self.zygote.spawn(self.setup, "run")
        return self.process

    def kill(self, phase: str, detail: str, *, landed: bool = True) -> bool:
        """SIGKILL the gateway and record the kill; returns whether it landed in `phase`."""
        assert self.process is not None
        if not sigkill(self.process):
            tail = log_tail(self.setup.log)
            self.unexpected_deaths.append(f"{phase}: gone before its kill\n{tail}")
            return False
        self._record(phase, detail, landed)
        return landed

    def _record(self, phase: str, detail: str, landed: bool = True) -> None:
        at = round(time.monotonic() - self.started, 2)
        self.kills.append(Kill(len(self.kills) + 1, phase, detail, at, landed))

    async def cycle(self, phase: str) -> None:
        """SIGKILL the gateway at a moment of `phase`, restarting it until a kill lands there
        (at most MAX_AIMS restarts; the misses stay on record)."""
        if phase == "api_create":
            self.api_kills_left -= 1
        for aim in range(MAX_AIMS):
            if phase == "api_create" and self.next_unasked() is None:
                return  # no invoice left to ask for: the kill is missing from the count
            if await self._attempt(phase, aim):
                return

    async def _attempt(self, phase: str, aim: int) -> bool:
        """One restart and its kill; whether the kill landed in `phase`."""
        if phase == "catch_up":
            await self._fall_behind(aim)
        cursor_before = await self.probe.cursor(NETWORK)
        spawned_at = time.monotonic()
        process = self.spawn()
        if phase == "startup":
            return await self._kill_while_starting(aim)
        if phase == "catch_up":
            assert cursor_before is not None
            return await self._kill_mid_catch_up(cursor_before[0])
        await wait_ready(self.setup, process)
        self.ready_seconds = time.monotonic() - spawned_at
        if phase == "webhook_send":
            self.audit.arm(process.pid)
        await self.retry_unanswered()
        if phase != "api_create" and self.may_create_freely() and self.rng.random() < 0.6:
            plan = self.next_unasked()
            if plan is not None:
                await self.post_invoice(plan)
        if phase == "after_payment":
            await self.pay(self.rng.randint(1, 2))
            return await self._sleep_then_kill(phase, 0.25)
        if phase == "confirmations":
            await self.node.mine(1)
            return await self._sleep_then_kill(phase, 0.15)
        if phase == "webhook_send":
            return await self._kill_on_webhook()
        if phase == "api_create":
            return await self._kill_during_create(aim)
        raise AssertionError(f"unknown phase {phase}")

    async def _sleep_then_kill(self, phase: str, longest: float) -> bool:
        """Kill a random moment within `longest` seconds of what the phase did (the payment or
        block is on chain before the wait starts): lands whenever the gateway was alive."""
        delay = self.rng.uniform(0.0, longest)
        await asyncio.sleep(delay)
        return self.kill(phase, f"{delay:.3f}s later")

    async def _kill_while_starting(self, aim: int) -> bool:
        """Kill at a random moment before the API usually answers; it landed if the API port
        still refused connections just before the SIGKILL (before uvicorn listens: the
        container, the migrations check, the workers' first steps)."""
        delay = self.rng.uniform(0.0, self.ready_seconds / (1 + aim))  # a miss was too late
        await asyncio.sleep(delay)
        listening = await _accepts_connections(self.setup.api_port)
        detail = f"{delay:.3f}s after the start"
        if listening:
            detail += ", API already listening"
        return self.kill("startup", detail, landed=not listening)

    async def _fall_behind(self, aim: int) -> None:
        """While the gateway is down: payments, maybe a noise transfer, and empty blocks (more
        of them on each new aim, so a quick catch-up has more batches to be caught in)."""
        await self.pay(self.rng.randint(2, 3))
        if self.rng.random() < 0.6:
            await self.send_noise()
        await self.node.mine(self.rng.randint(3, 7) + 4 * aim)

    async def _kill_mid_catch_up(self, start: int) -> bool:
        """Kill once the cursor has moved but not yet reached the tip (batches of 2 blocks)."""
        tip = await self.node.tip()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            cursor = await self.probe.cursor(NETWORK)
            height = start if cursor is None else cursor[0]
            if start < height < tip:
                detail = f"mid-catch-up: cursor {start}->{height} of tip {tip}"
                return self.kill("catch_up", detail)
            if height >= tip:
                detail = f"caught up first: cursor {start}->{height}"
                return self.kill("catch_up", detail, landed=False)
            await asyncio.sleep(0.002)
        detail = f"no progress: cursor stayed at {start} for 15 s"
        return self.kill("catch_up", detail, landed=False)

    async def _kill_on_webhook(self) -> bool:
        """Make events happen; the receiver kills the gateway on the next webhook request.

        Each wait for a request is preceded by something that sends one: a payment while any
        is left to make, else the merchant redelivers a delivery through the API."""
        assert self.process is not None
        waited = 0.0
        for _ in range(3):
            if self.audit.fired.is_set() or not await self._provoke_webhook():
                break
            await asyncio.to_thread(self.audit.fired.wait, WEBHOOK_WAIT)
            waited += WEBHOOK_WAIT
        if self.audit.disarm():
            wait_gone(self.process)
            self._record("webhook_send", "killed by the receiver mid-request")
            return True
        detail = f"no webhook within {waited:g} s; killed idle"
        return self.kill("webhook_send", detail, landed=False)

    async def _provoke_webhook(self) -> bool:
        """Make the gateway owe a webhook: a payment while one is left to make, else a new
        invoice if one may be spent, else the merchant redelivers a delivery through the API.
        False when none of these was possible."""
        if self.queue:
            await self.pay(1)
            return True
        plan = self.next_unasked() if self.may_create_freely() else None
        if plan is not None:
            return await self.post_invoice(plan) in ("created", "replayed")
        endpoint = self.rng.choice(self.endpoint_ids)
        try:
            async with self.api() as api:
                listed = await api.get(f"/v1/webhooks/{endpoint}/deliveries", params={"limit": 1})
                assert listed.status_code == 200, listed.text
                for delivery in listed.json()["data"]:
                    path = f"/v1/webhooks/{endpoint}/deliveries/{delivery['id']}/redeliver"
                    answer = await api.post(path)
                    assert answer.status_code == 202, answer.text
                    return True
        except httpx.TransportError:
            return True  # the trap fired meanwhile (a webhook owed from before): that was it
        return False

    async def _kill_during_create(self, aim: int) -> bool:
        """POST an invoice and kill the gateway somewhere within the request's usual span:
        before the claim, between claim and invoice, or after the commit. It landed if the
        request was still running at the kill (for "claimed"/"committed": the database showed
        that step first)."""
        plan = self.next_unasked()
        assert plan is not None, "cycle() aims at api_create only while plans are left"
        mode = next(self._create_modes)
        if mode == "random":
            request = asyncio.ensure_future(self.post_invoice(plan))
            # A miss was too late: aim earlier on each new try.
            delay = self.rng.uniform(0.0, 1.3 * self.post_seconds / (1 + aim))
            await asyncio.sleep(delay)
            landed = not request.done()
            detail = f"{delay * 1000:.0f} ms into POST {plan.key}"
            detail += "" if landed else " (the request had already ended)"
        elif mode == "claimed":
            # The key is claimed (own transaction); the invoice's transaction may be running.
            request = asyncio.ensure_future(self.post_invoice(plan))
            while await self.probe.claim_state(plan.key) is None and not request.done():  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # the database offers nothing to await
            landed = not request.done()
            detail = f"as POST {plan.key} claimed its key"
            detail += "" if landed else " (the request ended before the claim was seen)"
        else:
            # Right after the commit, and the client never learns the answer: its retry must
            # be answered from the completed key by the next process.
            request = asyncio.ensure_future(self.post_invoice(plan, drop_answer=True))
            while not await self.probe.has_order(plan.key) and not request.done():  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # the database offers nothing to await
            # The client drops the answer whether or not it came: what counts is the commit.
            landed = await self.probe.has_order(plan.key)
            detail = f"as POST {plan.key} committed; client drops the answer"
            detail += "" if landed else " (the request ended without a commit)"
        landed = self.kill("api_create", detail, landed=landed)
        await request
        return landed

    # -- the end ----------------------------------------------------------------------------
    async def finish(self) -> GatewayProcess:
        """Start the last gateway (plain command) and bring every plan to its end.

        Before it starts, the two timeouts a crash leaves behind are run out by hand (see
        DbProbe): claims of killed requests, and leases of killed dispatchers.
        """
        self.aged_claims = await self.probe.age_abandoned_claims(STALE_CLAIM)
        self.ended_leases = await self.probe.end_dead_leases()
        self.process = start_plain(self.setup, "run")
        await wait_ready(self.setup, self.process, timeout=60)
        for plan in self.plans:
            while plan.invoice_id is None:
                outcome = await self.post_invoice(plan)
                assert outcome in ("created", "replayed"), (plan.key, plan.attempts)
        await self.pay(len(self.queue))
        await self.node.mine(2)  # every payment reaches its 2 confirmations
        return self.process

    async def wait_quiet(self, expected_payments: int, timeout: float = 60) -> None:  # noqa: ASYNC109
        """Until the cursor stands on the tip, no payment awaits confirmations and every webhook
        is delivered."""
        deadline = time.monotonic() + timeout
        state = ""
        idle_since: float | None = None
        while time.monotonic() < deadline:
            tip = await self.node.tip()
            cursor = await self.probe.cursor(NETWORK)
            rows = await self.probe.rows("payments")
            unconfirmed = sum(1 for r in rows if r["status"] == "pending")
            pending = await self.probe.pending_deliveries()
            state = f"cursor {cursor}, tip {tip}, {len(rows)} payment rows for "
            state += f"{expected_payments} transfers, {unconfirmed} unconfirmed, "
            state += f"{pending} deliveries pending"
            settled = len(rows) >= expected_payments and not unconfirmed
            at_tip = cursor is not None and cursor[0] == tip
            if at_tip and settled and not pending:
                return
            if at_tip and not unconfirmed and not pending:
                # Nothing left to do, yet transfers are missing: do not wait out the timeout.
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 5:
                    raise AssertionError(f"idle with transfers unrecorded: {state}")
            else:
                idle_since = None
            await asyncio.sleep(0.1)
        raise AssertionError(f"no quiescence after {timeout}s: {state}\n{log_tail(self.setup.log)}")


async def _accepts_connections(port: int) -> bool:
    """Whether something accepts TCP connections on the loopback `port` right now."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
