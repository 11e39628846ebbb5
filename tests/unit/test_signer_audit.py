"""The hash-chained audit log: verification finds any change, insertion, removal or cut."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from chaingate.signer.audit import AuditLog, AuditLogDamaged, verify


def _log(tmp_path: Path, lines: int) -> tuple[Path, tuple[int, str]]:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, None)
    head = (0, "")
    for index in range(lines):
        head = log.append("signed", {"request_id": f"r{index}", "amount": str(index)})
    log.close()
    return path, head


def _rewrite(path: Path, change: object) -> None:
    lines = path.read_text().splitlines()
    change(lines)  # type: ignore[operator]
    path.write_text("\n".join(lines) + "\n")


def test_an_intact_log_verifies(tmp_path: Path) -> None:
    path, head = _log(tmp_path, 5)
    assert verify(path, head).ok
    assert verify(path, head).lines == 5
    reopened = AuditLog(path, head)
    assert reopened.append("refused", {"reason": "x"})[0] == 6
    reopened.close()


def test_a_changed_field_is_named_by_line(tmp_path: Path) -> None:
    path, head = _log(tmp_path, 5)

    def change(lines: list[str]) -> None:
        record = json.loads(lines[2])
        record["amount"] = "1000000"
        lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":"))

    _rewrite(path, change)
    result = verify(path, head)
    assert (result.ok, result.first_bad_line, result.lines) == (False, 3, 2)


def test_a_changed_line_with_a_recomputed_hash_breaks_the_next_link(tmp_path: Path) -> None:
    path, head = _log(tmp_path, 4)

    def forge(lines: list[str]) -> None:
        record = json.loads(lines[1])
        record.pop("hash")
        record["amount"] = "999"
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"))
        record["hash"] = hashlib.sha256(canonical.encode()).hexdigest()
        lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":"))

    _rewrite(path, forge)
    assert verify(path, head).first_bad_line == 3


def test_a_removed_line_breaks_the_chain(tmp_path: Path) -> None:
    path, head = _log(tmp_path, 4)
    _rewrite(path, lambda lines: lines.pop(1))
    assert verify(path, head).first_bad_line == 2


def test_a_cut_off_end_is_caught_against_the_head(tmp_path: Path) -> None:
    path, head = _log(tmp_path, 4)
    _rewrite(path, lambda lines: lines.pop())
    assert verify(path, None).ok  # the chain alone cannot tell...
    assert not verify(path, head).ok  # ...the head the signer keeps can
    with pytest.raises(AuditLogDamaged):
        AuditLog(path, head)  # and the signer refuses to go on writing after it


def test_garbage_is_a_broken_line(tmp_path: Path) -> None:
    path, _ = _log(tmp_path, 2)
    with path.open("a") as fh:
        fh.write("not json\n")
    assert verify(path, None).first_bad_line == 3
