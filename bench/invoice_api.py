"""POST /v1/invoices throughput and latency, against GET /healthz on the same server.

The real `chaingate api` process serves a migrated database (SQLite, then PostgreSQL) that holds
one merchant and one wallet; the network's RPC URL points at a closed port because creating an
invoice never asks a node and no tracker runs. A separate load-generator process keeps
16 requests in flight for the measured window, first on /healthz (the framework's floor), then
on POST /v1/invoices with valid bodies. Any non-2xx answer or connection error is counted.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bench.common import (
    Child,
    Row,
    free_port,
    options,
    postgres_reachable,
    print_rows,
    python_module,
    row,
    run_json_child,
    scratch_database,
    workdir,
    write_result,
)
from bench.gateway import NETWORK, environment, network, networks_toml, prepared, settings

NAME = "invoice_api"
CONCURRENCY = 16
DEAD_RPC_URL = "http://127.0.0.1:9/"  # discard port: nothing answers, nothing needs to
INVOICE_BODY = (
    '{"amount":"0.05","currency":"ETH","network":"' + NETWORK + '","order_id":"bench-{n}"}'
)


def _load(
    port: int,
    path: str,
    method: str,
    body: str | None,
    headers: dict[str, str],
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "method": method,
        "path": path,
        "headers": headers,
        "body": body,
        "concurrency": CONCURRENCY,
        "duration": duration,
        "warmup": warmup,
    }
    result: dict[str, Any] = run_json_child(
        python_module("bench.loadgen", json.dumps(spec)), timeout=duration + warmup + 60
    )
    return result


def _phase(
    server: Child,
    port: int,
    path: str,
    method: str,
    body: str | None,
    headers: dict[str, str],
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    cpu_before = server.cpu_seconds()
    result = _load(port, path, method, body, headers, duration, warmup)
    # Server CPU over warm-up + window: near 1.0 means one busy core (the server is the limit).
    share = (server.cpu_seconds() - cpu_before) / (duration + warmup)
    result["server_cpu_share"] = round(share, 3)
    result["server_cpu_ms_per_request"] = round(share * 1000 / max(result["rate_per_s"], 1), 3)
    return result


async def _backend(kind: str, duration: float, warmup: float, tmp: Path) -> dict[str, Any]:
    async with scratch_database(kind, NAME, tmp) as url:
        config = settings(url, [network(DEAD_RPC_URL)])
        container, shop = await prepared(config)
        await container.close()
        networks_file = tmp / f"networks-{kind}.toml"
        networks_file.write_text(networks_toml(config.networks[0]))
        port = free_port()
        argv = python_module("chaingate.entrypoints.cli", "api")
        env = environment(config, networks_file, port)
        with Child(argv, tmp / f"api-{kind}.log", env=env) as server:
            server.wait_http(f"http://127.0.0.1:{port}/healthz")
            healthz = _phase(server, port, "/healthz", "GET", None, {}, duration, warmup)
            auth = {"Authorization": f"Bearer {shop.api_key}"}
            invoices = _phase(
                server, port, "/v1/invoices", "POST", INVOICE_BODY, auth, duration, warmup
            )
        return {"healthz": healthz, "invoices": invoices}


def _rows(kind: str, figures: dict[str, Any]) -> list[Row]:
    invoices, healthz = figures["invoices"], figures["healthz"]
    return [
        row(
            NAME,
            f"{kind}: POST /v1/invoices rate",
            invoices["rate_per_s"],
            "req/s",
            "GET /healthz rate",
            healthz["rate_per_s"],
        ),
        row(
            NAME,
            f"{kind}: POST /v1/invoices p50",
            invoices["latency"]["p50_ms"],
            "ms",
            "GET /healthz p50",
            healthz["latency"]["p50_ms"],
        ),
        row(
            NAME,
            f"{kind}: POST /v1/invoices p99",
            invoices["latency"]["p99_ms"],
            "ms",
            "GET /healthz p99",
            healthz["latency"]["p99_ms"],
        ),
        row(
            NAME,
            f"{kind}: errors (non-2xx + connection)",
            invoices["errors"],
            "count",
            "healthz errors",
            healthz["errors"],
        ),
    ]


async def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    duration, warmup = (5.0, 1.0) if quick else (20.0, 2.0)
    details: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "duration_s": duration,
        "warmup_s": warmup,
        "server": "chaingate api (one uvicorn process, no workers)",
    }
    summary: list[Row] = []
    skipped = await postgres_reachable()
    with workdir(NAME) as scratch:
        for kind in ("sqlite", "postgresql"):
            if kind == "postgresql" and skipped:
                details["postgresql"] = {"skipped": skipped}
                continue
            figures = await _backend(kind, duration, warmup, Path(scratch))
            details[kind] = figures
            summary += _rows(kind, figures)
    return summary, details


def main() -> None:
    args = options(__doc__)
    summary, details = asyncio.run(measure(args.quick))
    write_result(NAME, args.quick, summary, details)
    print_rows(summary)


if __name__ == "__main__":
    main()
