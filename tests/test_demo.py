"""``confstage demo``: the whole story on an embedded local endpoint, within a generous time bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from confstage.cli.demo import SEED, find_handler

from ._cli import run

SECRET_KEYS = ("api_key", "stripe_key", "db_password")
EXPECTED_SOURCES = {
    "greeting": "env",
    "api_key": "kms-env",
    "db_url": "dynamodb",
    "timeout_ms": "dynamodb",
    "stripe_key": "dynamodb",
    "feature_flags": "s3",
    "log_level": "ssm",
    "db_password": "secretsmanager",
}


def test_the_demo_runs_the_repositorys_example_handler() -> None:
    """The demo finds examples/handler.py: the checkout's file, or the identical copy an installed wheel ships."""
    path = find_handler()
    assert path.read_bytes() == (Path(__file__).resolve().parents[1] / "examples" / "handler.py").read_bytes()


@pytest.mark.integration
def test_demo_resolves_both_stages_from_every_source_without_printing_secrets() -> None:
    """The demo exits 0, resolves DEV and PRD from each kind of source, masks secrets and shows warm < cold."""
    result = run("demo", "--output", "json", timeout=180)
    assert result.returncode == 0, result.stderr.decode()
    document = json.loads(result.stdout)
    rows = {(row["stage"], row["key"]): row for row in document["rows"]}
    assert len(rows) == 2 * len(EXPECTED_SOURCES)
    for stage in ("DEV", "PRD"):
        for key, source in EXPECTED_SOURCES.items():
            row = rows[(stage, key)]
            assert row["source"] == source
            if key in SECRET_KEYS:
                assert row["value"] == "********"
            elif key == "feature_flags":
                assert json.loads(row["value"]) == json.loads(SEED[stage][key])
            else:
                assert row["value"] == SEED[stage][key]
    output = (result.stdout + result.stderr).decode()
    for values in SEED.values():
        for key in SECRET_KEYS:
            assert values[key] not in output
    for invocation in document["invocations"]:
        assert invocation["warm_ms"] < invocation["cold_ms"]
    assert document["seconds"] < 60
