"""The benchmark script runs end to end (``--quick``), so it cannot rot as the sources change."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import run_benchmark

SOURCES = {
    "env",
    "kms-env",
    "s3-objects",
    "s3-document",
    "dynamodb-stage-key",
    "dynamodb-flat",
    "ssm",
    "secretsmanager",
}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="results")
def fixture_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One quick run of the benchmark on its own embedded moto server, read back from --json."""
    stdout, results = run_benchmark("bench_backends.py", "--quick", out=tmp_path_factory.mktemp("bench") / "out.json")
    assert "targets (issue 7)" in stdout
    return results


def test_every_source_is_reported(results: dict[str, Any]) -> None:
    """Every source appears, measured or with the reason it was skipped."""
    assert set(results["sources"]) == SOURCES
    for name, entry in results["sources"].items():
        assert entry["status"] in ("ok", "skipped"), (name, entry.get("reason"))
        if entry["status"] == "skipped":
            assert entry["reason"]
    assert results["sources"]["env"]["status"] == "ok"
    assert results["sources"]["kms-env"]["status"] == "ok"


def test_measured_sources_have_sane_figures(results: dict[str, Any]) -> None:
    """Cold, stage, warm and new-process figures are positive and carry sample and request counts."""
    for name, entry in results["sources"].items():
        if entry["status"] != "ok":
            continue
        ours = entry["confstage"]
        for series in ("cold_new_client", "cold_warm_client", "stage", "new_process"):
            assert ours[series]["median"] > 0, (name, series)
            assert ours[series]["p99"] >= ours[series]["median"], (name, series)
            assert ours[series]["n"] >= 1
            assert isinstance(ours[series]["requests"], int), (name, series)
        assert ours["warm_get"]["median"] > 0
        assert ours["warm_get"]["requests"] == 0, name  # a warm get never reaches the network
        assert entry["floor"]["median"] > 0
        if entry["boto3"] is not None:
            assert entry["boto3"]["stage_each"]["requests"] == results["meta"]["keys"], name
        if entry["powertools"] is not None:
            assert entry["powertools"]["warm_get"]["median"] > 0
            assert entry["powertools"]["warm_get"]["requests"] == 0, name


def test_targets_and_imports_are_reported(results: dict[str, Any]) -> None:
    """Each target has a verdict and a figure; import times of both libraries are present."""
    assert results["targets"]
    for target in results["targets"]:
        assert target["status"] in ("PASS", "FAIL", "N/A", "SKIP")
        assert target["measured"]
    assert results["import"]["confstage"]["median"] > 0
    assert results["import"]["powertools_parameters"]["median"] > 0


def test_cold_path_per_source_and_transport_is_reported(results: dict[str, Any]) -> None:
    """The cold path table has lite, botocore, raw boto3 and a bare interpreter for each source it covers, and
    the lite path imports no SDK."""
    cold = results["cold_path"]
    assert cold["runs"] == 1  # --quick
    by_source: dict[str, set[str]] = {}
    for row in cold["rows"]:
        by_source.setdefault(row["source"], set()).add(row["contender"])
        assert row["wall_ms"] > 0
        assert row["peak_mib"] > 0
        if row["contender"] == "lite":
            assert not row["botocore_imported"], row["source"]
    assert set(by_source) == {"dynamodb-stage-key", "s3-document", "ssm", "secretsmanager", "kms-env"}
    assert all(contenders == {"lite", "botocore", "boto3", "baseline"} for contenders in by_source.values())
    assert {v["source"] for v in cold["verdicts"]} == set(by_source)
