"""The coverage table of docs/reliability.md, held equal to what pytest collects.

Each table row names its test files (backticked paths or globs, relative to tests/) and says
"functions / cases": test functions, and collected cases (each parametrization, each database
run counts). Every collected test file must belong to exactly one row, so a new file cannot be
left out. The sentence "The `nightly` marker adds **N** cases" is checked too.

    python -m tests.support.reliability_doc            # check; exit 1 listing what differs
    python -m tests.support.reliability_doc --write    # rewrite the counts in place

tests/integration/test_reliability_doc.py runs the check in the suite.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "reliability.md"
HEADER = "| Area | Files | Tests |"
_COUNTS = re.compile(r"\**(\d+) / (\d+)\**")
_NIGHTLY = re.compile(r"The `nightly` marker adds \*\*(\d+)\*\* cases")


@dataclass(frozen=True)
class Collected:
    node_ids: list[str]  # what a normal run collects (nightly deselected)
    deselected: int  # the nightly cases


def collect() -> Collected:
    """`pytest --collect-only -q` over tests/, as `make test` would run it."""
    finished = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    lines = finished.stdout.splitlines()
    node_ids = [line for line in lines if "::" in line and line.startswith("tests/")]
    summary = next((line for line in reversed(lines) if "collected" in line), "")
    if finished.returncode != 0 or not node_ids:
        raise RuntimeError(f"collection failed:\n{finished.stdout[-3000:]}\n{finished.stderr}")
    deselected = re.search(r"(\d+) deselected", summary)
    return Collected(node_ids, int(deselected.group(1)) if deselected else 0)


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]
    patterns: list[str]

    @property
    def is_total(self) -> bool:
        return self.cells[0].startswith("**All**")


def rows(doc: str) -> list[Row]:
    lines = doc.splitlines()
    start = lines.index(HEADER) + 2  # past the header and its separator
    found = []
    for number in range(start, len(lines)):
        if not lines[number].startswith("|"):
            break
        cells = [c.strip() for c in lines[number].strip("|").split("|")]
        found.append(Row(number, cells, re.findall(r"`([^`]+\.py)`", cells[1])))
    return found


def _counts(node_ids: list[str]) -> tuple[int, int]:
    functions = {node.split("[", 1)[0] for node in node_ids}
    return len(functions), len(node_ids)


def _file(node_id: str) -> str:
    return node_id.split("::", 1)[0].removeprefix("tests/")


def _owners(table: list[Row], files: set[str]) -> dict[str, list[int]]:
    owners: dict[str, list[int]] = {f: [] for f in files}
    for index, row in enumerate(table):
        for pattern in row.patterns:
            for name in files:
                if fnmatch.fnmatchcase(name, pattern):
                    owners[name].append(index)
    return owners


def problems(doc: str, collected: Collected) -> list[str]:
    """What in the document's table disagrees with the collection (empty: nothing)."""
    table = rows(doc)
    body = [r for r in table if not r.is_total]
    files = {_file(n) for n in collected.node_ids}
    owners = _owners(body, files)
    found = []
    for name, rows_of in sorted(owners.items()):
        if len(rows_of) != 1:
            where = [body[i].cells[0][:40] for i in rows_of] or "no row"
            found.append(f"{name}: in {where} (every test file belongs to exactly one row)")
    for index, row in enumerate(body):
        for pattern in row.patterns:
            if not any(fnmatch.fnmatchcase(f, pattern) for f in files):
                found.append(f"row {row.cells[0][:40]!r}: `{pattern}` matches no test file")
        mine = [n for n in collected.node_ids if index in owners.get(_file(n), [])]
        expected = "{} / {}".format(*_counts(mine))
        if _COUNTS.fullmatch(row.cells[2]) is None or _plain(row.cells[2]) != expected:
            found.append(f"row {row.cells[0][:40]!r}: says {row.cells[2]}, collected {expected}")
    totals = [r for r in table if r.is_total]
    expected_total = "{} / {}".format(*_counts(collected.node_ids))
    if len(totals) != 1 or _plain(totals[0].cells[2]) != expected_total:
        found.append(f"the All row must say {expected_total}")
    elif totals[0].cells[1] != f"{len(files)} files":
        found.append(f"the All row must say {len(files)} files, says {totals[0].cells[1]}")
    nightly = _NIGHTLY.search(doc)
    if nightly is None or int(nightly.group(1)) != collected.deselected:
        found.append(f"say: The `nightly` marker adds **{collected.deselected}** cases")
    return found


def _plain(cell: str) -> str:
    return cell.replace("*", "").strip()


def rewrite(doc: str, collected: Collected) -> str:
    """The document with every count taken from the collection."""
    lines = doc.splitlines()
    table = rows(doc)
    body = [r for r in table if not r.is_total]
    files = {_file(n) for n in collected.node_ids}
    owners = _owners(body, files)
    for index, row in enumerate(body):
        mine = [n for n in collected.node_ids if index in owners.get(_file(n), [])]
        cells = [*row.cells[:2], "{} / {}".format(*_counts(mine))]
        lines[row.line] = "| " + " | ".join(cells) + " |"
    for row in table:
        if row.is_total:
            counts = "**{} / {}**".format(*_counts(collected.node_ids))
            lines[row.line] = f"| {row.cells[0]} | {len(files)} files | {counts} |"
    text = "\n".join(lines) + ("\n" if doc.endswith("\n") else "")
    return _NIGHTLY.sub(f"The `nightly` marker adds **{collected.deselected}** cases", text)


def main(argv: list[str]) -> int:
    collected = collect()
    doc = DOC.read_text()
    if "--write" in argv:
        DOC.write_text(rewrite(doc, collected))
        doc = DOC.read_text()
    found = problems(doc, collected)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
