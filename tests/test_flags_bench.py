"""benchmarks/bench_flags.py runs and reports every candidate beside Powertools (figures are not judged here)."""

from __future__ import annotations

import bench_flags


def test_flags_benchmark_reports_every_candidate_and_the_ratio() -> None:
    """A tiny run times each candidate, Powertools included, and renders the target line."""
    results = bench_flags.measure(repeats=2, target_s=0.002)
    assert set(results["labels"]) == {"inside", "handler", "plain", "evaluate", "powertools"}
    assert all(results[name]["median"] > 0 for name in results["labels"])
    assert set(results["ratios"]) == {"inside", "handler", "evaluate"}
    assert any("cheaper than Powertools' evaluate" in line for line in bench_flags.render(results))
