"""benchmarks/cold_path.py runs end to end, so the cold path table per source and transport cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import run_benchmark

pytestmark = pytest.mark.integration


def test_cold_path_benchmark_reports_each_transport_and_a_lite_path_without_the_sdk(tmp_path: Path) -> None:
    """One quick run (one process per contender) reports wall, peak memory and phases of confstage through lite
    and botocore, raw boto3 and a bare interpreter; only the lite path is free of botocore."""
    stdout, document = run_benchmark(
        "cold_path.py", "--runs", "1", "--only", "dynamodb-stage-key", out=tmp_path / "cold.json"
    )
    assert "cold path per source and transport" in stdout
    assert "lite/boto3 wall" in stdout
    rows = {row["contender"]: row for row in document["rows"]}
    assert set(rows) == {"lite", "botocore", "boto3", "baseline"}
    assert {row["source"] for row in document["rows"]} == {"dynamodb-stage-key"}
    assert rows["lite"]["sdk_imported"] == []
    assert not rows["lite"]["botocore_imported"]
    assert rows["botocore"]["botocore_imported"]
    assert set(rows["boto3"]["sdk_imported"]) >= {"boto3", "botocore"}
    for row in rows.values():
        assert row["wall_ms"] > 0
        assert row["peak_mib"] > 0
        assert row["runs"] == 1
    assert set(rows["lite"]["phases_ms"]) == {"import", "fetch", "tls context"}
    assert set(rows["boto3"]["phases_ms"]) == {"import", "client", "request", "tls context"}
    (verdict,) = document["verdicts"]
    assert verdict["status"] in ("PASS", "FAIL")
    assert verdict["lite_sdk_free"]
