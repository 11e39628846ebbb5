"""`chaingate dev` owns its state directory and its nodes, and they do not outlive it.

- A state directory is held by an exclusive `flock` on `dev.lock` for as long as `chaingate dev`
  OR any node it started runs: the nodes inherit the locked descriptor, and the kernel drops
  the lock only when the last holder exits. A second `chaingate dev` on the same directory
  is refused while the first lives; after a `kill -9` it waits for the dead one's nodes to
  finish writing their state, then takes over.
- Each node gets the parent-death signal (Linux `PR_SET_PDEATHSIG`): when `chaingate dev`
  dies, however it dies, the kernel sends its nodes SIGTERM, which lets anvil write its state
  file and litecoind shut down cleanly. The signal follows the thread that started the node:
  the dev command starts its nodes from its main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_FILE = "dev.lock"
_PR_SET_PDEATHSIG = 1
# How long a new start waits for the nodes of a `chaingate dev` that died to exit: anvil
# writes its state file and litecoind flushes its chain on SIGTERM (seconds, not minutes).
RECLAIM_SECONDS = 45.0


class StateDirBusy(Exception):
    """Another `chaingate dev` (or the nodes it left behind) holds the state directory."""


@dataclass(frozen=True)
class Tether:
    """How a node started by this process is tied to it: the state-dir lock's descriptor it
    inherits, and the parent-death signal."""

    lock_fd: int

    def popen_options(self) -> dict[str, Any]:
        """Keyword arguments for `subprocess.Popen`."""
        return {"pass_fds": (self.lock_fd,), "preexec_fn": _die_with(os.getpid())}


@contextlib.contextmanager
def hold_state_dir(
    state_dir: Path, *, reclaim_seconds: float = RECLAIM_SECONDS
) -> Iterator[Tether]:
    """Lock `state_dir` for this process and the nodes it starts with the returned Tether.

    Raises StateDirBusy when a live `chaingate dev` holds it, or when the nodes of one that
    died still hold it after `reclaim_seconds`.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd, path, reclaim_seconds)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield Tether(fd)
    finally:
        os.close(fd)  # the lock stays while a node still holds its inherited copy


def _lock(fd: int, path: Path, reclaim_seconds: float) -> None:
    deadline = time.monotonic() + reclaim_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _holder(path)
        if holder is not None and _alive(holder):
            raise StateDirBusy(
                f"{path.parent} is in use by chaingate dev (pid {holder}); stop it first "
                "or pass another --state-dir"
            )
        if time.monotonic() >= deadline:
            raise StateDirBusy(
                f"{path.parent} is still held by nodes of a chaingate dev that is gone "
                f"(pid {holder}); stop them (see `fuser {path}`)"
            )
        time.sleep(0.2)  # its nodes got SIGTERM when it died: let them finish writing


def _holder(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with(parent: int) -> Callable[[], None]:
    """A preexec function: SIGTERM the child when `parent` dies (Linux; elsewhere a no-op,
    and the state-dir lock still stops a second start)."""
    if not sys.platform.startswith("linux"):
        return lambda: None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork, called after

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            os._exit(errno.EPERM)  # never run a node that would outlive us
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
