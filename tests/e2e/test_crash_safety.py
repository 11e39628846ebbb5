"""Crash safety: the whole gateway (`chaingate run`: API, tracker, expirer, dispatcher in one
process) is SIGKILLed again and again, in named phases, while an independent payer pays 20
invoices in ETH and USDT, partly, exactly and over, and a receiver takes the webhooks. Every
phase must get at least its scheduled number of kills that really landed in it (the driver
aims again after a miss, see tests/support/crash_run.py); the counts are printed and asserted.
The normal suite runs the representative schedule (22 kills); the sweep (52 kills) is marked
`nightly` and runs with `make nightly`. After the last restart and quiescence the end state is
compared with the chain and with what the client and the receiver saw:

- every on-chain transfer to an invoice is one payment row (txid, position), nothing else is;
- every invoice's amount_paid is the sum of its counted payments and its status follows;
- every committed event reached each endpoint at least once, same id, same bytes, signed;
  no request carried an event that does not exist;
- one Idempotency-Key never made two invoices; the cursor stands on the final tip.

Restarts are children forked from a process that already imported the gateway (see
tests/support/zygote.py: ~0.15 s instead of ~2 s each); the last gateway, whose end state is
checked and which must stop cleanly on SIGTERM, is the plain `python -m chaingate.entrypoints.cli
run`. The seed (CHAINGATE_CRASH_SEED) fixes the invoices and the order of the phases; the exact
moments also depend on timing. The report is printed (`pytest -s`). See docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaingate.adapters.chains.evm.derivation import account_xpub_from_mnemonic
from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.uow import Database
from chaingate.services.merchants import create_merchant
from tests.support.anvil import AnvilNode
from tests.support.crash_run import DECIMALS, EXPIRES_IN, NETWORK, CrashRun, Plan, make_plans
from tests.support.db_probe import DbProbe
from tests.support.gateway import MERCHANT_MNEMONICS
from tests.support.gateway_process import (
    GatewaySetup,
    PlainProcess,
    Zygote,
    sigkill,
    wait_ready,
    write_networks_file,
)
from tests.support.net import free_port
from tests.support.payer import Payer, decimal_string
from tests.support.reconcile import (
    check_event_counts,
    check_invoices_reconcile,
    check_payments_match_chain,
    expected_state,
    row_status,
    to_invoice,
)
from tests.support.webhook_audit import Audit, flaky_for_some, signature_valid
from tests.support.webhook_receiver import Receiver, always

pytestmark = pytest.mark.anvil

SEED = int(os.environ.get("CHAINGATE_CRASH_SEED", "20261122"))
INVOICES = 20
# Kills per phase that must land there; the first boot is killed too ("idle"), so 22 / 52 in
# all, plus the misses the driver aimed again after.
SCHEDULES = {
    "representative": {
        "startup": 3,
        "after_payment": 4,
        "confirmations": 2,
        "catch_up": 4,
        "webhook_send": 4,
        "api_create": 4,
    },
    "sweep": {
        "startup": 5,
        "after_payment": 11,
        "confirmations": 4,
        "catch_up": 10,
        "webhook_send": 10,
        "api_create": 11,
    },
}
PATHS = ("/hook", "/flaky")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.mark.parametrize(
    "schedule_name", ["representative", pytest.param("sweep", marks=pytest.mark.nightly)]
)
async def test_sigkill_in_every_phase_loses_and_doubles_nothing(
    anvil_isolated: AnvilNode,
    clean_database_url: str,
    tmp_path: Path,
    receiver: Receiver,
    schedule_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    schedule = SCHEDULES[schedule_name]
    print(f"\ncrash-safety seed {SEED} (CHAINGATE_CRASH_SEED), database {clean_database_url}")
    node = anvil_isolated
    payer = node.accounts[1].address
    usdt = await node.deploy_token("USDT", 6, holder=payer)
    await _check_chain_clock(node)
    network = node.network(
        [usdt],
        required_confirmations=2,
        start_block=await node.tip(),
        scan_batch_blocks=2,
        poll_interval_seconds=0.05,
    )
    setup = GatewaySetup(
        clean_database_url,
        write_networks_file(tmp_path / "networks.toml", [network]),
        free_port(),
        tmp_path / "gateway.log",
        settings={
            "CHAINGATE_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
            "CHAINGATE_WEBHOOK_RETRY_MAX_SECONDS": "0.3",
            "CHAINGATE_WEBHOOK_TIMEOUT_SECONDS": "2",
        },
    )
    api_key = await _create_merchant(clean_database_url)
    audit = Audit()
    urls = {
        "/hook": receiver.route("/hook", audit.wrap(always(200))),
        "/flaky": receiver.route("/flaky", audit.wrap(flaky_for_some(str(SEED)))),
    }
    zygote, probe = Zygote(), DbProbe(clean_database_url)
    run = CrashRun(
        node=node,
        setup=setup,
        zygote=zygote,
        probe=probe,
        payer=Payer(node, payer, [usdt]),
        audit=audit,
        api_key=api_key,
        plans=make_plans(INVOICES, rng),
        rng=rng,
    )
    try:
        first = run.spawn()
        await wait_ready(setup, first, timeout=60)
        secrets = await _register(run, urls)
        while await probe.cursor(NETWORK) is None:  # the tracker has placed its cursor
            assert first.alive(), "the first gateway died during setup"
            await asyncio.sleep(0.02)
        run.kill("idle", "first boot, after setup")

        phases = [phase for phase, count in schedule.items() for _ in range(count)]
        rng.shuffle(phases)
        run.api_kills_left = schedule["api_create"]
        for phase in phases:
            await run.cycle(phase)
        final = await run.finish()
        assert isinstance(final, PlainProcess)
        sent = run.payer.sent
        await run.wait_quiet(len(to_invoice(run.plans, sent)))

        events = await _all_events(run)
        db_events = {e["id"]: e for e in await probe.rows("events")}
        await _check_invoices_through_api(run)
        _check_feed_is_the_outbox(events, db_events)
        check_event_counts(run.plans, sent, events)
        resent = _check_webhooks(audit, secrets, events, db_events)

        final.process.send_signal(signal.SIGTERM)
        assert final.process.wait(timeout=30) == 0, "the last gateway did not stop cleanly"
        await _check_database(run, probe, len(events))
        _check_client_histories(run.plans)
        problems = [
            line
            for line in setup.log.read_text(errors="replace").splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]
        assert not problems, "\n".join(problems[:20])
        assert not run.unexpected_deaths, run.unexpected_deaths
        report = _report(run, schedule, events, resent, time.monotonic() - began)
        record_property("crash_report", f"{schedule_name}, {clean_database_url.split(':')[0]}")
        record_property("crash_report", report)
        landed = run.landed()
        short = {p: (landed[p], n) for p, n in schedule.items() if landed[p] < n}
        assert not short, f"phases short of landed kills (landed, wanted): {short}\n{report}"
        assert landed["idle"] == 1
    finally:
        if run.process is not None:
            sigkill(run.process)
        zygote.close()
        await probe.close()


# -- setup ----------------------------------------------------------------------------------
async def _check_chain_clock(node: AnvilNode) -> None:
    """Invoices expire in 29 days of wall-clock time: anvil's clock must not be past that."""
    block = await node.rpc("eth_getBlockByNumber", "latest", False)
    ahead = int(block["timestamp"], 16) - datetime.now(UTC).timestamp()
    assert ahead < EXPIRES_IN - 86_400, f"anvil's clock is {ahead:.0f}s ahead of the wall clock"


async def _create_merchant(url: str) -> str:
    db = Database(create_engine(url))
    try:
        async with db.uow() as uow:
            _, api_key = await create_merchant(uow, "Crash shop", datetime.now(UTC))
    finally:
        await db.dispose()
    return api_key


async def _register(run: CrashRun, urls: dict[str, str]) -> dict[str, str]:
    """The merchant's wallet and two webhook endpoints (their ids go to `run`); returns each
    path's signing secret."""
    xpub = account_xpub_from_mnemonic(MERCHANT_MNEMONICS[0])
    secrets = {}
    async with run.api() as api:
        wallet = await api.post("/v1/wallets", json={"network": NETWORK, "xpub": xpub})
        assert wallet.status_code == 201, wallet.text
        for path, url in urls.items():
            hook = await api.post("/v1/webhooks", json={"url": url})
            assert hook.status_code == 201, hook.text
            secrets[path] = hook.json()["secret"]
            run.endpoint_ids.append(hook.json()["id"])
    return secrets


# -- the verdict ----------------------------------------------------------------------------
async def _all_events(run: CrashRun) -> list[dict[str, Any]]:
    """GET /v1/events page by page (100 a page), as a merchant catching up would."""
    events: list[dict[str, Any]] = []
    after: str | None = None
    async with run.api() as api:
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            answer = await api.get("/v1/events", params=params)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            events += page["data"]
            if not page["has_more"]:
                return events
            after = page["next_cursor"]


async def _check_invoices_through_api(run: CrashRun) -> None:
    async with run.api() as api:
        for plan in run.plans:
            decimals = DECIMALS[plan.currency]
            same_order = (await api.get("/v1/invoices", params={"order_id": plan.key})).json()
            assert [i["id"] for i in same_order["data"]] == [plan.invoice_id], plan.attempts
            view = (await api.get(f"/v1/invoices/{plan.invoice_id}")).json()
            paid, status, additional = expected_state(plan)
            assert (view["status"], view["additional_status"]) == (status, additional), view
            assert view["amount_paid"] == decimal_string(paid, decimals), view
            arrived = [t for t in run.payer.sent if t.to == plan.address]
            assert sum(1 for t in arrived if t.asset == plan.currency) == len(plan.parts)
            seen = sorted(
                (p["txid"], p["output"] or str(p["log_index"]), p["status"])
                for p in view["payments"]
            )
            wanted = sorted((t.txid, t.position, row_status(plan, t)) for t in arrived)
            assert seen == wanted, view["payments"]


def _check_feed_is_the_outbox(
    events: list[dict[str, Any]], db_events: dict[str, dict[str, Any]]
) -> None:
    """The feed holds every outbox row once, in commit order (seq, per merchant)."""
    order = sorted(db_events, key=lambda i: db_events[i]["seq"])
    assert [e["id"] for e in events] == order
    for event in events:
        assert event == json.loads(db_events[event["id"]]["body"])


def _check_webhooks(
    audit: Audit,
    secrets: dict[str, str],
    events: list[dict[str, Any]],
    db_events: dict[str, dict[str, Any]],
) -> dict[str, int]:
    """Each event at least once per endpoint (a 200 to a live sender), identical bytes, signed.
    Returns how many event ids each endpoint received more than once."""
    types = {e["id"]: e["type"] for e in events}
    resent = {}
    for path in PATHS:
        answered = audit.answered(path)
        by_id: dict[str, list[Any]] = defaultdict(list)
        for answer in answered:
            by_id[answer.request.event_id].append(answer)
        assert set(by_id) <= set(types), f"{path}: webhooks for events that do not exist"
        for event_id, event_type in types.items():
            attempts = by_id.get(event_id, [])
            assert any(a.status == 200 for a in attempts), f"{path}: {event_id} never delivered"
            for attempt in attempts:
                request = attempt.request
                body = db_events[event_id]["body"].encode()
                if len(request.body) < int(request.headers["content-length"]):
                    # The sender was killed while writing the body: never counted as delivered.
                    assert body.startswith(request.body) and attempt.status != 200, attempt
                    continue
                assert request.body == body, event_id
                assert json.loads(request.body)["id"] == event_id
                assert request.headers["chaingate-event-type"] == event_type
                header = request.headers["chaingate-signature"]
                assert signature_valid(secrets[path], header, request.body), event_id
        resent[path] = sum(1 for attempts in by_id.values() if len(attempts) > 1)
    return resent


def _check_client_histories(plans: list[Plan]) -> None:
    """What the client learned on each retry is what the server had done."""
    for plan in plans:
        history = plan.attempts
        answered = [a for a in history if a != "no answer"]  # a retry may meet a dying gateway
        for earlier, later in itertools.pairwise(answered):
            if earlier == "answer dropped":  # committed before the kill: only a replay is right
                assert later == "replayed", (plan.key, history)
            if earlier == "in progress":  # a killed request's claim, re-claimed once stale
                assert later in ("created", "in progress"), (plan.key, history)
        assert history[-1] in ("created", "replayed"), (plan.key, history)
        assert history.count("created") <= 1, (plan.key, history)


async def _check_database(run: CrashRun, probe: DbProbe, event_count: int) -> None:
    await check_payments_match_chain(probe, run.plans, run.payer.sent)
    await check_invoices_reconcile(probe, run.plans)
    invoices = await probe.rows("invoices")
    assert Counter(i["order_id"] for i in invoices) == Counter(p.key for p in run.plans)
    claims = await probe.rows("idempotency_keys")
    assert sorted(c["key"] for c in claims) == sorted(p.key for p in run.plans)
    assert {c["state"] for c in claims} == {"done"}
    deliveries = await probe.rows("webhook_deliveries")
    assert len(deliveries) == event_count * len(PATHS)
    assert {d["status"] for d in deliveries} == {"succeeded"}
    tip = await run.node.rpc("eth_getBlockByNumber", "latest", False)
    assert await probe.cursor(NETWORK) == (int(tip["number"], 16), tip["hash"])


def _report(
    run: CrashRun,
    schedule: dict[str, int],
    events: list[dict[str, Any]],
    resent: dict[str, int],
    seconds: float,
) -> str:
    """The kill report (also printed, for `pytest -s`): per phase, landed / wanted / missed."""
    landed, missed = run.landed(), run.missed()
    lines = [f"kills: {len(run.kills)} ({sum(landed.values())} landed in their phase)"]
    for phase in ["idle", *schedule]:
        wanted = schedule.get(phase, 1)
        lines.append(
            f"  {phase:14s} landed {landed[phase]:3d} of {wanted:3d} wanted, missed {missed[phase]}"
        )
    create_paths = Counter(" -> ".join(p.attempts) for p in run.plans)
    lines.append(f"  invoice POST histories (per Idempotency-Key): {dict(create_paths)}")
    lines.append(
        f"  stale claims aged: {run.aged_claims}, dead leases ended: {run.ended_leases}, "
        f"event ids received more than once: {resent}"
    )
    reaching = to_invoice(run.plans, run.payer.sent)
    wrong_asset = sum(1 for t in run.noise if t in reaching)
    lines.append(
        f"invoices {len(run.plans)}, transfers {len(run.payer.sent)} (to invoices "
        f"{len(reaching)}, of which wrong asset {wrong_asset}; to strangers "
        f"{len(run.noise) - wrong_asset}), events {len(events)}, webhook requests "
        f"{sum(len(run.audit.answered(p)) for p in PATHS)}, {seconds:.1f}s"
    )
    for kill in run.kills:
        mark = "" if kill.landed else "  MISSED"
        lines.append(f"  #{kill.number:02d} t={kill.at:6.2f}s {kill.phase:14s} {kill.detail}{mark}")
    report = "\n".join(lines)
    print(report)
    return report
