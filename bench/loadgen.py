"""A small HTTP/1.1 load generator, run as its own OS process: `python -m bench.loadgen SPEC`.

SPEC is a JSON object: host, port, method, path, headers, body (a string in which "{n}" becomes
a per-request counter, or null), concurrency, duration and warmup (seconds). Each of the
`concurrency` workers keeps one keep-alive connection and sends its next request as soon as
the previous answer is read (a closed loop). Prints one JSON line: requests completed inside
the measured window, the rate, latency percentiles, status counts, errors, and the
generator's own CPU use (if it nears 100% of a core, the generator is the limit).

Raw asyncio streams (on uvloop when installed) rather than httpx: the generator must cost
less per request than the server it measures.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.common import latency_ms


@dataclass
class Spec:
    host: str
    port: int
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    concurrency: int
    duration: float
    warmup: float


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    counter: int = 0


def _request(spec: Spec, n: int) -> bytes:
    lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
    lines += [f"{name}: {value}" for name, value in spec.headers.items()]
    body = b"" if spec.body is None else spec.body.replace("{n}", str(n)).encode()
    if spec.body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status code, and whether the server will close the connection."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif key == b"connection" and b"close" in value.lower():
            close = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, close


async def _worker(spec: Spec, tally: Tally, measure_from: float, stop_at: float) -> None:
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.perf_counter() < stop_at:
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(spec.host, spec.port)
            tally.counter += 1
            payload = _request(spec, tally.counter)
            started = time.perf_counter()
            writer.write(payload)
            status, close = await _read_response(reader)
            finished = time.perf_counter()
            if started >= measure_from and finished <= stop_at:
                tally.latencies.append(finished - started)
                tally.statuses[status] += 1
            if close:
                writer.close()
                writer = reader = None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            if time.perf_counter() >= measure_from:
                tally.errors[type(exc).__name__] += 1
            if writer is not None:
                writer.close()
            writer = reader = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def generate(spec: Spec) -> dict[str, Any]:
    """Run the closed loop and return what the measured window saw."""
    tally = Tally()
    begin = time.perf_counter()
    measure_from = begin + spec.warmup
    stop_at = measure_from + spec.duration
    workers = [
        asyncio.ensure_future(_worker(spec, tally, measure_from, stop_at))
        for _ in range(spec.concurrency)
    ]
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_start = _cpu()
    await asyncio.gather(*workers)
    cpu_used = _cpu() - cpu_start
    completed = len(tally.latencies)
    non_2xx = sum(n for status, n in tally.statuses.items() if not 200 <= status < 300)
    return {
        "path": spec.path,
        "method": spec.method,
        "concurrency": spec.concurrency,
        "duration_s": spec.duration,
        "completed": completed,
        "rate_per_s": round(completed / spec.duration, 1),
        "latency": latency_ms(tally.latencies),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "non_2xx": non_2xx,
        "connection_errors": dict(tally.errors),
        "errors": non_2xx + sum(tally.errors.values()),
        "generator_cpu_share": round(cpu_used / spec.duration, 3),
    }


def main() -> None:
    spec = Spec(**json.loads(sys.argv[1]))
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(generate(spec))
    else:
        result = uvloop.run(generate(spec))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
