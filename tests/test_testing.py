"""``confstage.testing``: the pytest plugin's fixtures, the fake Lambda context and ``override``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import confstage
from confstage import KeyNotFoundError, StageError, _context, parse_arn, stage_from_arn
from confstage.testing import ConfstageValues, LambdaContext, lambda_context, override

USER_TESTS = """
import pytest

import confstage


@confstage.handler
def lambda_handler(event, context):
    return {"stage": confstage.current_stage(), "db": confstage.get("db_url"), "port": confstage.get_int("port")}


def test_handler_reads_the_fixture_values(confstage_values, lambda_context):
    confstage_values({"db_url": "sqlite://prd", "port": "5432"}, stage="PRD")
    confstage_values({"db_url": "sqlite://dev", "port": "5433"}, stage="DEV")
    assert lambda_handler({}, lambda_context(alias="PRD")) == {"stage": "PRD", "db": "sqlite://prd", "port": 5432}
    assert lambda_handler({}, lambda_context(alias="DEV"))["db"] == "sqlite://dev"
    context = lambda_context(alias="live", function="orders", region="eu-west-1", account="111122223333")
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:111122223333:function:orders:live"
    assert 0 < context.get_remaining_time_in_millis() <= 3000


def test_nothing_leaks_into_the_next_test():
    with pytest.raises(confstage.StageError):
        confstage.get("db_url")
"""


def test_user_test_file_uses_the_plugin_in_a_fresh_pytest(tmp_path: Path) -> None:
    """A user's test file gets ``confstage_values`` and ``lambda_context`` from the installed plugin, and passes."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFSTAGE_", "PYTEST_"))}
    env["CONFSTAGE_CACHE_DIR"] = ""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_fixture_values_are_served_and_marked_secret(confstage_values: ConfstageValues) -> None:
    """Values given to the fixture are what the module API returns; ``secret=`` marks keys secret."""
    config = confstage_values({"db_url": "sqlite://"}, stage="TST", secret=["password"], password="pw")
    assert confstage.get("db_url") == "sqlite://"
    assert confstage.get_many(["db_url", "password"]) == {"db_url": "sqlite://", "password": "pw"}
    assert config.sources[0].fetch("TST", ()).secret == {"password"}
    with pytest.raises(KeyNotFoundError, match="memory://confstage-values"):
        confstage.get("absent")


def test_closing_restores_the_previous_default_client() -> None:
    """``override`` (the fixture's engine) puts back whatever default client was there before."""
    before = confstage.configure(sources="env://", stage="DEV")
    with override({"k": "v"}, stage="PRD") as kit:
        assert confstage.get("k") == "v"
        kit({"k": "w"}, stage="PRD")  # a second call replaces the value, nothing stale is served
        assert confstage.get("k") == "w"
    assert _context.get_client() is before
    confstage.reset()
    with override(k="v"):
        pass
    assert _context.get_client() is None


def test_lambda_context_looks_like_the_runtime_s() -> None:
    """The fake context carries the runtime's attributes and an ARN whose qualifier is the alias or version."""
    context = lambda_context()
    assert isinstance(context, LambdaContext)
    assert parse_arn(context.invoked_function_arn).qualifier == "PRD"
    assert (context.function_name, context.function_version, context.memory_limit_in_mb) == ("fn", "1", 128)
    assert context.log_group_name == "/aws/lambda/fn"
    assert context.log_stream_name.split("/")[3].startswith("[1]")
    assert len(context.aws_request_id) == 36
    assert 0 < context.get_remaining_time_in_millis() <= 3000

    assert stage_from_arn(lambda_context(None).invoked_function_arn) is None  # unqualified
    assert lambda_context(None).function_version == "$LATEST"
    numbered = lambda_context(None, version="7")
    assert numbered.invoked_function_arn.endswith(":fn:7")
    assert numbered.function_version == "7"
    assert lambda_context("$LATEST").invoked_function_arn.endswith(":fn:$LATEST")
    gov = lambda_context("DEV", partition="aws-us-gov", region="us-gov-west-1")
    assert parse_arn(gov.invoked_function_arn).partition == "aws-us-gov"


def test_unqualified_context_needs_a_configured_stage(confstage_values: ConfstageValues) -> None:
    """Under an unqualified fake context the handler falls back to the client's stage, as in Lambda."""
    confstage_values({"k": "v"}, stage="PRD")

    @confstage.handler
    def handle(event: object, context: object) -> str:
        return confstage.current_stage()

    assert handle({}, lambda_context(None)) == "PRD"
    confstage.configure(sources="env://")
    with pytest.raises(StageError):
        handle({}, lambda_context(None))


def test_importing_the_plugin_module_stays_cheap() -> None:
    """``confstage.testing`` (loaded by pytest in every run) imports neither boto3 nor the client."""
    script = "import sys, json, confstage.testing; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    assert not modules & {"boto3", "botocore", "cryptography", "confstage.client"}
