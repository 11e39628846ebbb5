"""The signer's audit log: one JSON line per decision, each holding the previous line's hash.

A line is `{"seq", "at", "decision", ..., "prev", "hash"}` where `hash` is the SHA-256 of the
line's canonical JSON without `hash`. Changing, inserting or removing a line breaks the chain
from there; cutting lines off the end is caught against the head (last seq and hash) the
signer keeps in its state database. Lines never hold key material — only refs, addresses,
amounts and digests.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


def _canonical(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _hash(record: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(record)).hexdigest()


class AuditLogDamaged(RuntimeError):
    """The log on disk does not continue the chain the signer last wrote: it refuses to run
    until an operator looks (`chaingate signer audit verify` says where)."""


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    lines: int  # lines read (the good ones, when not ok)
    first_bad_line: int | None = None  # 1-based
    reason: str = ""
    last_hash: str = GENESIS  # of the last good line


def verify(path: Path, head: tuple[int, str] | None = None) -> Verification:
    """Check the whole chain; with `head` (the state's last seq and hash) also that nothing
    was cut off the end. An absent or empty log with no head is a valid empty chain."""
    previous, seq, count = GENESIS, 0, 0
    try:
        lines = path.read_bytes().splitlines() if path.exists() else []
    except OSError as exc:
        return Verification(False, 0, 1, f"cannot read the log: {exc.strerror}")
    for number, raw in enumerate(lines, start=1):
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError("not an object")
            claimed = record.pop("hash")
        except (ValueError, KeyError):
            return Verification(False, count, number, "not a log line")
        if record.get("prev") != previous:
            return Verification(False, count, number, "does not follow the line before it")
        if record.get("seq") != seq + 1:
            return Verification(False, count, number, "sequence number out of order")
        if _hash(record) != claimed:
            return Verification(False, count, number, "its content does not match its hash")
        previous, seq, count = claimed, seq + 1, count + 1
    if head is not None and (seq < head[0] or (seq == head[0] and previous != head[1])):
        return Verification(
            False, count, count + 1, f"the log ends at line {seq}; the signer wrote {head[0]}"
        )
    return Verification(True, count, last_hash=previous)


class AuditLog:
    """Appends decisions; each append is flushed and fsynced before it returns."""

    def __init__(self, path: Path, head: tuple[int, str] | None) -> None:
        self.path = path
        # The whole chain is checked before the first new line: a signer never continues a
        # log someone changed (a crash between an append and the state commit leaves the file
        # one line ahead of the head, which is fine; behind it or different is not).
        checked = verify(path, head)
        if not checked.ok:
            raise AuditLogDamaged(
                f"the audit log is damaged at line {checked.first_bad_line}: {checked.reason} "
                "(`chaingate signer audit verify` reports it; an operator must look)"
            )
        self.seq, self.hash = checked.lines, checked.last_hash
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab")

    def append(self, decision: str, details: Mapping[str, Any]) -> tuple[int, str]:
        """Write one line; answer its (seq, hash) for the state's head."""
        record: dict[str, Any] = {
            "seq": self.seq + 1,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "decision": decision,
            **details,
            "prev": self.hash,
        }
        digest = _hash(record)
        record["hash"] = digest
        self._file.write(_canonical(record) + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.seq, self.hash = record["seq"], digest
        return self.seq, digest

    def close(self) -> None:
        self._file.close()


def read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """Every line as a dict (for tests and operators' tools)."""
    for raw in path.read_bytes().splitlines():
        yield json.loads(raw)
