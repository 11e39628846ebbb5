"""docs/reliability.md says what the suite checks: its coverage table must equal what pytest
collects (tests/support/reliability_doc.py), so the counts and the file list cannot drift."""

from __future__ import annotations

from tests.support.reliability_doc import DOC, Collected, collect, problems, rewrite

SAMPLE = """Intro. The `nightly` marker adds **1** cases.

| Area | Files | Tests |
|------|-------|-------|
| Money | `unit/test_money.py` | 2 / 3 |
| Webhooks | `unit/test_webhook_*.py` | 1 / 1 |
| **All** | 3 files | **3 / 4** |
"""
NODES = [
    "tests/unit/test_money.py::test_a[x]",
    "tests/unit/test_money.py::test_a[y]",
    "tests/unit/test_money.py::test_b",
    "tests/unit/test_webhook_sender.py::test_c",
]


def test_the_coverage_table_matches_the_collected_suite() -> None:
    found = problems(DOC.read_text(), collect())
    assert found == [], "docs/reliability.md drifted (make reliability-table):\n" + "\n".join(found)


def test_the_check_finds_a_wrong_count_a_file_in_no_row_and_a_wrong_total() -> None:
    collected = Collected(NODES, deselected=1)
    assert problems(SAMPLE.replace("3 files", "2 files"), collected) == []
    wrong = SAMPLE.replace("| 2 / 3 |", "| 2 / 4 |")
    assert any("says 2 / 4, collected 2 / 3" in p for p in problems(wrong, collected))
    unowned = Collected([*NODES, "tests/unit/test_new.py::test_d"], deselected=1)
    found = problems(SAMPLE.replace("3 files", "2 files"), unowned)
    assert any("unit/test_new.py: in no row" in p for p in found)
    assert any("All row must say 4 / 5" in p for p in found)
    assert problems(SAMPLE, Collected(NODES, deselected=2))[-1].endswith("adds **2** cases")


def test_rewriting_takes_every_count_from_the_collection() -> None:
    stale = SAMPLE.replace("| 2 / 3 |", "| 9 / 9 |").replace("**1** cases", "**7** cases")
    fixed = rewrite(stale, Collected(NODES, deselected=1))
    assert fixed == SAMPLE.replace("3 files", "2 files")
