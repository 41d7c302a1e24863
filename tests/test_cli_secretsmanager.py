"""The CLI on ``secretsmanager://app?layout=secrets``: every store command on a secret per key, checked with boto3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ._cli import assert_one_line_error, invoke, run

pytestmark = pytest.mark.integration

URL = "secretsmanager://app?layout=secrets"
SECRET = "sk_live_never_printed"


def ok(*args: str, input: str | None = None) -> str:
    """``confstage ARGS --source URL`` in this process; exit 0, its stdout."""
    result = invoke(*args, "--source", URL, input=input)
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def value(sm: Any, name: str) -> str:
    return str(sm.get_secret_value(SecretId=name)["SecretString"])


@pytest.fixture(name="sm")
def fixture_sm(boto: Any) -> Any:
    """A raw Secrets Manager client on the local endpoint."""
    return boto("secretsmanager")


def test_init_creates_nothing_and_says_ready(sm: Any) -> None:
    """There is nothing to create for this layout: init succeeds and no secret appears."""
    result = invoke("init", "--source", URL)
    assert result.exit_code == 0, result.output
    assert "ready: secretsmanager://app?layout=secrets" in result.stderr
    assert sm.list_secrets()["SecretList"] == []


def test_put_writes_one_secret_and_get_masks_it_unless_revealed(sm: Any) -> None:
    """``put`` creates ``app/DEV/db/password``; ``get`` prints the mask, ``get --reveal`` the value alone."""
    ok("put", "db/password", SECRET, "--stage", "DEV")
    assert value(sm, "app/DEV/db/password") == SECRET
    assert ok("get", "db/password", "--stage", "DEV") == "********\n"
    assert ok("get", "db/password", "--reveal", "--stage", "DEV") == f"{SECRET}\n"
    listed = json.loads(ok("list", "--stage", "DEV", "--output", "json"))
    assert listed == {"db/password": "********"}


def test_a_key_aws_would_refuse_is_a_usage_error_before_any_write(sm: Any) -> None:
    """A non-ASCII key cannot be a secret name: exit 2, one line, nothing written."""
    line = assert_one_line_error(invoke("put", "clé", "v", "--stage", "DEV", "--source", URL), status=2)
    assert "only ASCII letters, digits" in line
    assert sm.list_secrets()["SecretList"] == []


def test_delete_then_get_is_not_found_and_a_second_delete_exits_one(sm: Any) -> None:
    """``delete`` schedules the secret's deletion; the key is then not found, and deleting it again exits 1."""
    ok("put", "gone", "x", "--stage", "DEV")
    ok("delete", "gone", "--stage", "DEV")
    assert "DeletedDate" in sm.describe_secret(SecretId="app/DEV/gone")
    missing = invoke("get", "gone", "--stage", "DEV", "--source", URL)
    assert "not found" in assert_one_line_error(missing, status=1)
    assert invoke("delete", "gone", "--stage", "DEV", "--source", URL).exit_code == 1


def test_history_and_rollback_through_the_console_script(sm: Any) -> None:
    """``history`` lists the key's secret versions (JSON, newest first); ``rollback --to`` restores the old value."""
    ok("put", "k", "old", "--stage", "PRD")
    ok("put", "k", "new", "--stage", "PRD")
    result = run("history", "k", "--stage", "PRD", "--source", URL, "--output", "json")
    assert result.returncode == 0, result.stderr
    versions = json.loads(result.stdout)
    assert [v["latest"] for v in versions] == [True, False]

    rolled = run("rollback", "k", "--to", versions[1]["version"], "--stage", "PRD", "--source", URL)
    assert rolled.returncode == 0, rolled.stderr
    assert value(sm, "app/PRD/k") == "old"
    assert rolled.stdout == b""  # its message goes to stderr
    assert run("history", "absent", "--stage", "PRD", "--source", URL).returncode == 1


def test_import_export_round_trip_with_secrets_left_out_unless_revealed(sm: Any, tmp_path: Path) -> None:
    """``import`` writes a secret per entry; ``export`` leaves every value out (all are secrets) unless --reveal."""
    path = tmp_path / "values.env"
    path.write_text(f"DB_URL=postgres://db\nAPI_KEY={SECRET}\n")
    ok("import", str(path), "--stage", "DEV")

    result = invoke("export", "--stage", "DEV", "--source", URL)
    assert (result.exit_code, result.stdout) == (0, "")
    assert "left out 2 secure value(s) (API_KEY, DB_URL)" in result.stderr
    revealed = json.loads(ok("export", "--reveal", "--format", "json", "--stage", "DEV"))
    assert revealed == {"API_KEY": SECRET, "DB_URL": "postgres://db"}


def test_promote_copies_what_differs_without_a_kms_key(sm: Any) -> None:
    """``promote DEV PRD`` copies only the changed values (Secrets Manager encrypts them itself: no --kms-key);
    ``--dry-run`` writes nothing."""
    ok("put", "same", "1", "--stage", "DEV")
    ok("put", "same", "1", "--stage", "PRD")
    ok("put", "changed", "new", "--stage", "DEV")
    ok("put", "changed", "old", "--stage", "PRD")
    ok("put", "added", "a", "--stage", "DEV")

    ok("promote", "DEV", "PRD", "--dry-run")
    assert value(sm, "app/PRD/changed") == "old"
    result = invoke("promote", "DEV", "PRD", "--source", URL)
    assert result.exit_code == 0, result.output
    assert "promoted 2 value(s) from DEV to PRD (1 already equal)" in result.stderr
    assert SECRET not in result.output
    assert (value(sm, "app/PRD/changed"), value(sm, "app/PRD/added")) == ("new", "a")
    diff = json.loads(ok("diff", "DEV", "PRD", "--output", "json"))
    assert diff == {"added": {}, "removed": {}, "changed": {}, "unchanged": 3}
