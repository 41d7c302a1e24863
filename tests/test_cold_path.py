"""benchmarks/cold_path.py runs end to end, so the lite-versus-boto3 cold path figure cannot rot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration


def test_cold_path_benchmark_reports_a_lite_path_without_the_sdk(tmp_path: Path) -> None:
    """One quick run (one process per contender) reports wall, peak memory and phases, and lite imports no SDK."""
    out = tmp_path / "cold.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFSTAGE_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "benchmarks/cold_path.py", "--runs", "1", "--only", "dynamodb:Query", "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "lite/boto3 wall" in done.stdout
    entry = json.loads(out.read_text())["results"]["dynamodb:Query"]
    assert entry["lite"]["sdk_imported"] == []
    assert set(entry["boto3"]["sdk_imported"]) >= {"boto3", "botocore"}
    for contender in ("lite", "boto3", "baseline"):
        assert entry[contender]["wall_ms"] > 0
        assert entry[contender]["peak_mib"] > 0
    assert set(entry["lite"]["phases_ms"]) == {"import", "tls context", "request"}
