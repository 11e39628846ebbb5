"""Shared by every benchmark: options, percentiles, result files, child processes, databases."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

from chaingate.entrypoints.dev.anvil import free_port as free_port

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
Row = dict[str, Any]


def options(description: str | None, *, wait_quiet: bool = False) -> argparse.Namespace:
    """Command-line options every benchmark accepts (and --wait-quiet for run_all)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    if wait_quiet:
        parser.add_argument(
            "--wait-quiet",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="before each benchmark, wait up to SECONDS for the machine to go idle",
        )
    return parser.parse_args()


def wait_until_quiet(within: float, busy_cores: float = 0.5) -> float:
    """Wait (at most `within` s) until other processes use under `busy_cores` cores over
    2 s; returns the busy cores last seen. Other people's test runs make figures noisy."""
    deadline = time.monotonic() + within
    while True:
        before = _cpu_jiffies()
        time.sleep(2.0)
        after = _cpu_jiffies()
        seen = (after[0] - before[0]) / max(1, after[1] - before[1]) * (os.cpu_count() or 1)
        if seen < busy_cores or time.monotonic() >= deadline:
            return round(seen, 2)


def machine() -> dict[str, Any]:
    """What the figures were measured on (no paths, no host names)."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
    }


def code_version() -> str:
    """The commit measured, with "-dirty" when the work tree had uncommitted changes."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_mark() -> tuple[int, int]:
    """A mark of the whole machine's CPU time, for `busy_cores_since`."""
    return _cpu_jiffies()


def busy_cores_since(mark: tuple[int, int]) -> float:
    """Cores the whole machine kept busy (everyone, this benchmark included) since `mark`."""
    busy, total = _cpu_jiffies()
    share = (busy - mark[0]) / max(1, total - mark[1])
    return round(share * (os.cpu_count() or 1), 2)


def _own_cpu_seconds() -> float:
    """CPU used by this process and its finished children (servers, nodes, load generators)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_STARTED_AT = (_cpu_jiffies(), _own_cpu_seconds(), time.monotonic())


def machine_load() -> dict[str, float]:
    """Cores kept busy since this benchmark started: by the whole machine, by the benchmark's
    own processes, and so by everyone else (other people's test runs make figures noisy)."""
    (busy_start, total_start), own_start, wall_start = _STARTED_AT
    busy, total = _cpu_jiffies()
    cores = os.cpu_count() or 1
    machine_cores = (busy - busy_start) / max(1, total - total_start) * cores
    own_cores = (_own_cpu_seconds() - own_start) / max(1e-9, time.monotonic() - wall_start)
    return {
        "machine_busy_cores": round(machine_cores, 2),
        "benchmark_busy_cores": round(own_cores, 2),
        "others_busy_cores": round(max(0.0, machine_cores - own_cores), 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """Count, p50, p95, p99, max and mean of durations given in seconds, as milliseconds."""
    if not seconds:
        return {"n": 0}
    return {
        "n": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 3),
        "p95_ms": round(percentile(seconds, 95) * 1000, 3),
        "p99_ms": round(percentile(seconds, 99) * 1000, 3),
        "max_ms": round(max(seconds) * 1000, 3),
        "mean_ms": round(sum(seconds) / len(seconds) * 1000, 3),
    }


def ratio(value: float, baseline: float) -> float | None:
    return round(value / baseline, 4) if baseline else None


def row(
    benchmark: str,
    metric: str,
    value: float,
    unit: str,
    baseline: str,
    baseline_value: float,
) -> Row:
    """One line of the summary table: a figure, its same-run baseline and their ratio."""
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": round(value, 3),
        "unit": unit,
        "baseline": baseline,
        "baseline_value": round(baseline_value, 3),
        "ratio": ratio(value, baseline_value),
    }


def write_result(name: str, quick: bool, summary: list[Row], details: Mapping[str, Any]) -> Path:
    """bench/results/<name>.json with the machine, the summary rows and the details."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "mode": "quick" if quick else "full",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_version(),
        "machine": machine(),
        "machine_load": machine_load(),
        "summary": summary,
        "details": details,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def print_rows(rows: Sequence[Row]) -> None:
    """The summary rows as an aligned text table on stdout."""
    header = ("benchmark", "metric", "value", "unit", "baseline", "baseline value", "ratio")
    lines = [header] + [
        (
            str(r["benchmark"]),
            str(r["metric"]),
            f"{r['value']:,}",
            str(r["unit"]),
            str(r["baseline"]),
            f"{r['baseline_value']:,}",
            "-" if r["ratio"] is None else f"{r['ratio']:.3f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print(f"cores: {os.cpu_count()}")


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def run_json_child(argv: Sequence[str], timeout: float) -> Any:
    """Run a helper process to completion and parse the JSON it prints last on stdout."""
    done = subprocess.run(
        list(argv),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{argv[2:]} exited with {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Child:
    """A process this benchmark started: logs to a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        stdout: int | None = None,
    ) -> None:
        self.log = log
        with log.open("ab") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                list(argv),
                cwd=REPO_ROOT,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=output if stdout is None else stdout,
                stderr=output,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def wait_http(self, url: str, within: float = 30.0) -> None:
        """Return once `url` answers 2xx; raise if the process dies or time runs out."""
        deadline = time.monotonic() + within
        with httpx.Client(timeout=1, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"child exited with {self.process.returncode}: {self.tail()}"
                    )
                try:
                    if http.get(url).is_success:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"{url} did not answer within {within}s: {self.tail()}")

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def postgres_admin_url() -> str:
    """Where scratch PostgreSQL databases are created (same variable as the test suite)."""
    return os.environ.get(
        "CHAINGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )


@asynccontextmanager
async def scratch_database(kind: str, tag: str, workdir: Path) -> AsyncIterator[str]:
    """An empty database URL (SQLite file in `workdir`, or a new PostgreSQL database) that is
    removed afterwards. Raises OSError/asyncpg errors when PostgreSQL is unreachable."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / f'{tag}.db'}"
        return
    admin = postgres_admin_url()
    name = f"chaingate_bench_{tag}_{os.getpid()}"
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason (the PostgreSQL runs are then skipped)."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(postgres_admin_url(), timeout=3), 5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL not reachable: {exc}"
    await conn.close()
    return None


def workdir(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A private scratch directory for databases, logs and config files."""
    return tempfile.TemporaryDirectory(prefix=f"chaingate-bench-{prefix}-")
