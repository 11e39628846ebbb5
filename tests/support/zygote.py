"""A fork server for gateway processes: `python -m tests.support.zygote`.

Importing the gateway takes ~2 s of CPU on our 2-core machines (web3, eth-account, bip-utils,
FastAPI, Alembic), which would make fifty restarts cost minutes. This process imports
`chaingate.entrypoints.cli` once and then forks one child per request; each child sets the
requested environment and runs `cli.main(argv)` — the same code `python -m
chaingate.entrypoints.cli <argv>` runs, started in ~0.15 s (gunicorn's `--preload` idea).

Protocol (one JSON object per line on stdin): {"argv": [...], "env": {...}, "log": "<path>"}.
The answer is the child's pid on its own line. The first line written is "ready".
Children are reaped by the kernel (SIGCHLD ignored), so a pid that no longer exists is a
child that died. The server exits when its stdin closes; it never signals its children.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

# Everything the gateway imports, including what it only imports once it runs.
import aiosqlite  # noqa: F401
import asyncpg  # type: ignore[import-untyped]  # noqa: F401
import uvicorn  # noqa: F401

from chaingate.entrypoints import cli


def _child(request: dict[str, object]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    log = os.open(str(request["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    argv = request["argv"]
    assert isinstance(argv, list)
    code = 1
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        sys.stdout.flush()  # a child must not inherit (and later repeat) buffered output
        pid = os.fork()
        if pid == 0:
            _child(request)
        print(pid, flush=True)


if __name__ == "__main__":
    main()
