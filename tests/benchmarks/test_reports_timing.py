"""The report benchmark on a small seeded trail: its chain verifies, and the report counts
every seeded enrollment, verification and search once."""

from __future__ import annotations

from pathlib import Path

from wajah.benchmarks.reports_timing import markdown, run


def test_the_seeded_trail_is_counted_whole(tmp_path: Path) -> None:
    results = run(300, tmp_path, repeats=1)
    totals = results["totals"]
    counted = sum(
        sum(totals[kind].values()) for kind in ("enrollments", "verifications", "searches")
    )
    assert counted == totals["capture_attempts"] == results["capture_events"] > 150
    assert 0 < totals["failure_to_acquire"] < results["capture_events"]
    assert totals["time_to_decision_s"]["count"] > 0
    assert "report per day and station" in markdown(results)
