"""``--output json`` on every write, progress on bulk writes, hints on the common failures, ``NO_COLOR``.

Issue 24, item 6. In-process (click's CliRunner) against the local endpoint; what was written is checked
through the CLI's own reads or plain boto3. A write's record names what was written, never a value.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from confstage.cli.errors import EXIT_FAILED, EXIT_USAGE, hint
from confstage.cli.output import reading
from confstage.errors import SourceError
from confstage.transport import AwsError, NetworkError

from ._cli import assert_one_line_error, invoke

pytestmark = pytest.mark.integration

TABLE = "dynamodb://cfg"
BUCKET = "s3://cfg-bucket/app"
SECRET = "sk_live_never_in_a_record"


@pytest.fixture(name="table")
def fixture_table(aws_endpoint: str) -> str:
    """The stage-key table cfg on the local endpoint, made by ``confstage init --output json``."""
    result = invoke("init", "--source", TABLE, "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"action": "init", "store": TABLE}
    return TABLE


def ok(*args: str) -> Any:
    """The JSON record a successful write prints on stdout: it never holds a value (nor does stderr)."""
    result = invoke(*args, "--output", "json")
    assert result.exit_code == 0, (result.output, result.exception)
    assert SECRET not in result.output
    return json.loads(result.stdout)


def listed(table: str, stage: str) -> Any:
    """The values of a stage, as ``list --output json`` prints them."""
    result = invoke("list", "--stage", stage, "--source", table, "--output", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_put_prints_one_record_of_what_it_wrote(table: str) -> None:
    """``put`` names the key, stage, store, version and whether it is secure: never the value."""
    record = ok("put", "api_key", SECRET, "--stage", "DEV", "--source", table)
    assert record == {
        "action": "put",
        "key": "api_key",
        "stage": "DEV",
        "store": table,
        "secure": False,
        "version": record["version"],
    }
    assert invoke("get", "api_key", "--stage", "DEV", "--source", table).stdout == SECRET + "\n"


def test_import_dry_run_prints_what_would_be_written_and_writes_nothing(table: str, tmp_path: Path) -> None:
    """``import --dry-run --output json``: one record, each key as add or change; the stage is unchanged."""
    ok("put", "a", "old", "--stage", "DEV", "--source", table)
    path = tmp_path / "dev.env"
    path.write_text(f"a={SECRET}\nb=2\n")
    record = ok("import", str(path), "--dry-run", "--stage", "DEV", "--source", table)
    assert record["dry_run"] is True
    assert record["keys"] == {"a": "change", "b": "add"}
    assert record["count"] == 2
    assert listed(table, "DEV") == {"a": "old"}
    written = ok("import", str(path), "--stage", "DEV", "--source", table)
    assert (written["dry_run"], written["keys"], written["file"]) == (False, ["a", "b"], str(path))
    assert listed(table, "DEV") == {"a": SECRET, "b": "2"}


def test_delete_and_rollback_print_records(aws_endpoint: str) -> None:
    """``delete`` and ``rollback`` (an S3 store keeps versions) say what they did as JSON."""
    ok("init", "--source", BUCKET)
    first = ok("put", "flag", "off", "--stage", "PRD", "--source", BUCKET)["version"]
    ok("put", "flag", "on", "--stage", "PRD", "--source", BUCKET)
    restored = ok("rollback", "flag", "--to", first, "--stage", "PRD", "--source", BUCKET)
    assert (restored["action"], restored["restored"]) == ("rollback", first)
    assert restored["version"] not in (None, first)
    assert invoke("get", "flag", "--stage", "PRD", "--source", BUCKET).stdout == "off\n"
    deleted = ok("delete", "flag", "--stage", "PRD", "--source", BUCKET)
    assert deleted == {"action": "delete", "key": "flag", "stage": "PRD", "store": BUCKET}


def test_promote_prints_one_record_and_a_progress_bar_over_many_keys(table: str, tmp_path: Path) -> None:
    """``promote`` over many keys: a progress bar on stderr, one record on stdout (actions, no values)."""
    path = tmp_path / "many.env"
    path.write_text("".join(f"k{i:03d}={SECRET}{i}\n" for i in range(60)))
    ok("import", str(path), "--stage", "DEV", "--source", table)
    ok("put", "k000", "different", "--stage", "PRD", "--source", table)
    dry = ok("promote", "DEV", "PRD", "--dry-run", "--source", table)
    assert (dry["dry_run"], dry["count"], dry["keys"]["k000"], dry["keys"]["k001"]) == (True, 60, "change", "add")
    result = invoke("promote", "DEV", "PRD", "--source", table, "--output", "json")
    assert result.exit_code == 0, result.output
    assert "promoting to PRD" in result.stderr
    record = json.loads(result.stdout)
    assert (record["dry_run"], record["count"], record["unchanged"]) == (False, 60, 0)
    assert SECRET not in result.stdout
    assert listed(table, "PRD")["k059"] == f"{SECRET}59"


def test_encrypt_prints_a_record_with_the_ciphertext(aws_endpoint: str, kms_key: str) -> None:
    """``encrypt --output json``: the ciphertext, the key and the function; not the plaintext."""
    record = ok("encrypt", SECRET, "--kms-key", kms_key, "--function", "fn")
    assert set(record) == {"ciphertext", "kms_key", "function"}
    assert record["function"] == "fn"


def test_no_color_is_honoured(table: str, tmp_path: Path) -> None:
    """The progress bar is coloured on a forced terminal, and not under ``NO_COLOR``."""
    path = tmp_path / "many.env"
    path.write_text("".join(f"k{i:03d}=v\n" for i in range(60)))
    coloured = invoke("import", str(path), "--stage", "DEV", "--source", table, env={"FORCE_COLOR": "1"})
    plain = invoke("import", str(path), "--stage", "PRD", "--source", table, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert coloured.exit_code == plain.exit_code == 0
    assert "\x1b[38;" in coloured.stderr or "\x1b[3" in coloured.stderr
    assert "\x1b[38;" not in plain.stderr
    assert not any(f"\x1b[{code}m" in plain.stderr for code in range(30, 38))


# --- hints -------------------------------------------------------------------------------------------------


def test_no_region_says_how_to_give_one(tmp_path: Path) -> None:
    """No region anywhere: exit 2 and one line naming --region and AWS_REGION."""
    env = {"AWS_REGION": None, "AWS_DEFAULT_REGION": None, "AWS_CONFIG_FILE": str(tmp_path / "none")}
    result = invoke("list", "--stage", "DEV", "--source", TABLE, env=env)
    line = assert_one_line_error(result, status=EXIT_USAGE)
    assert "--region REGION or set AWS_REGION" in line


@pytest.mark.parametrize(("url", "what"), [("dynamodb://missing", "table"), ("s3://missing-bucket/app", "bucket")])
def test_a_missing_table_or_bucket_says_init_creates_it(aws_endpoint: str, url: str, what: str) -> None:
    """Reading or writing a store whose table or bucket was never created: run ``confstage init``."""
    for command in (("list",), ("put", "k", "v")):
        line = assert_one_line_error(invoke(*command, "--stage", "DEV", "--source", url), status=EXIT_FAILED)
        assert f"the {what} does not exist: confstage init creates it" in line


class _Refusing(BaseHTTPRequestHandler):
    """An AWS endpoint that refuses every request as DynamoDB does an expired session token."""

    def do_POST(self) -> None:  # http.server's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {
                "__type": "com.amazon.coral.service#ExpiredTokenException",
                "message": "The security token included in the request is expired",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(name="refusing")
def fixture_refusing() -> Iterator[str]:
    """The URL of an endpoint that answers every request with ExpiredTokenException."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_expired_credentials_say_to_refresh_them(refusing: str) -> None:
    """An expired token: exit 1 and one line saying the credentials are expired or invalid."""
    result = invoke("list", "--stage", "DEV", "--source", TABLE, "--endpoint-url", refusing)
    line = assert_one_line_error(result, status=EXIT_FAILED)
    assert "credentials are expired or invalid" in line


@pytest.mark.parametrize(
    ("cause", "status", "advice"),
    [
        (AwsError("InvalidClientTokenId"), EXIT_FAILED, "expired or invalid"),
        (AwsError("UnrecognizedClientException"), EXIT_FAILED, "expired or invalid"),
        (AwsError("SignatureDoesNotMatch"), EXIT_FAILED, "expired or invalid"),
        (NetworkError("NoCredentialsError: Unable to locate credentials"), EXIT_USAGE, "--profile"),
        (NetworkError("NoRegionError: You must specify a region."), EXIT_USAGE, "AWS_REGION"),
        (AwsError("ResourceNotFoundException"), EXIT_FAILED, "confstage put"),  # operation secretsmanager:...
    ],
)
def test_hints_read_the_cause_never_the_message(cause: Exception, status: int, advice: str) -> None:
    """The hint comes from the error's type or code; the message of the cause is never shown by it."""
    try:
        raise cause
    except Exception as exc:
        error = SourceError("secretsmanager:GetSecretValue failed", operation="secretsmanager:GetSecretValue")
        error.__cause__ = exc
    found = hint(error)
    assert found is not None
    assert found[1] == status
    assert advice in found[0]


def test_other_failures_get_no_hint() -> None:
    """A throttled or unknown error is shown as it is."""
    error = SourceError("dynamodb:Query failed", operation="dynamodb:Query")
    error.__cause__ = AwsError("ThrottlingException")
    assert hint(error) is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reading_a_stage_shows_a_spinner_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """``export`` and ``promote`` read a stage in one call: a spinner on a terminal, nothing in a pipe or a log."""
    terminal, pipe = _Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    with reading("reading stage DEV"):
        pass
    monkeypatch.setattr(sys, "stderr", pipe)
    with reading("reading stage DEV"):
        pass
    assert "reading stage DEV" in terminal.getvalue()
    assert pipe.getvalue() == ""
