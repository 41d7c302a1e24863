"""The ``confstage`` console script: global options, exit status, stdout purity, resolve and encrypt."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ._cli import run

ARN = "arn:aws:lambda:us-east-1:123456789012:function:helloStagedWorld"


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def test_help_exits_zero_and_lists_every_command() -> None:
    """``confstage --help`` succeeds and names each command of the contract."""
    result = run("--help")
    assert result.returncode == 0
    commands = "init put get list delete history rollback import export diff promote encrypt iam-policy resolve demo"
    for command in commands.split():
        assert command in result.stdout.decode()


@pytest.mark.parametrize(
    "args",
    [("no-such-command",), ("get",), ("resolve",), ("--output", "yaml", "resolve", ARN), ("put", "k", "--secure")],
)
def test_usage_errors_exit_two(args: tuple[str, ...]) -> None:
    """Unknown commands, missing arguments and bad option values exit with status 2."""
    result = run(*args, env={"CONFSTAGE_STAGE": "DEV"})
    assert result.returncode == 2, result.stderr
    assert result.stdout == b""


def test_resolve_prints_the_alias_as_stage_and_nothing_else() -> None:
    """``resolve`` prints exactly the stage and a newline on stdout."""
    result = run("resolve", f"{ARN}:PRD")
    assert result.returncode == 0
    assert result.stdout == b"PRD\n"
    assert result.stderr == b""


def test_resolve_maps_aliases_from_option_and_environment() -> None:
    """``--aliases`` and ``CONFSTAGE_ALIASES`` map an alias to its stage; the option wins."""
    assert run("resolve", f"{ARN}:live", env={"CONFSTAGE_ALIASES": "live=PRD"}).stdout == b"PRD\n"
    assert run("resolve", f"{ARN}:live", "--aliases", "live=LIVE2").stdout == b"LIVE2\n"


def test_resolve_of_an_unqualified_arn_uses_stage_or_fails_with_one() -> None:
    """An ARN without an alias maps to --stage/CONFSTAGE_STAGE, and exits 1 when neither is set."""
    assert run("resolve", f"{ARN}:$LATEST", "--stage", "DEV").stdout == b"DEV\n"
    assert run("resolve", f"{ARN}:7", env={"CONFSTAGE_STAGE": "TST"}).stdout == b"TST\n"
    failed = run("resolve", ARN)
    assert failed.returncode == 1
    assert failed.stdout == b""
    assert len(lines(failed.stderr)) == 1


def test_resolve_rejects_a_malformed_arn_as_a_usage_error() -> None:
    """A string that is not a Lambda function ARN exits 2."""
    result = run("resolve", "arn:aws:s3:::bucket")
    assert result.returncode == 2
    assert "not a Lambda function ARN" in result.stderr.decode()


def test_resolve_json_output_describes_the_arn() -> None:
    """``--output json`` gives the ARN's parts, the stage and how it was found."""
    result = run("resolve", "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:live", "--output", "json")
    document = json.loads(result.stdout)
    assert document == {
        "partition": "aws-cn",
        "region": "cn-north-1",
        "account": "123456789012",
        "function": "f",
        "qualifier": "live",
        "alias": "live",
        "stage": "live",
        "via": "alias",
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--stage", "PRD", "resolve", ARN),
        ("resolve", ARN, "--stage", "PRD"),
        ("--stage", "DEV", "resolve", ARN, "--stage", "PRD"),
        ("--output", "table", "resolve", "--stage", "PRD", ARN),
    ],
)
def test_global_options_work_before_or_after_the_command(args: tuple[str, ...]) -> None:
    """Global options are accepted on either side of the command name; the later (command's) one wins."""
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"PRD\n"


def test_encrypt_output_decrypts_with_the_lambda_encryption_context(boto: Any, kms_key: str) -> None:
    """``encrypt`` prints base64 ciphertext that KMS decrypts only with LambdaFunctionName=NAME."""
    result = run("encrypt", "p@ss w0rd", "--kms-key", kms_key, "--function", "helloStagedWorld")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\n")
    blob = base64.b64decode(result.stdout.strip(), validate=True)
    plain = boto("kms").decrypt(CiphertextBlob=blob, EncryptionContext={"LambdaFunctionName": "helloStagedWorld"})
    assert plain["Plaintext"] == b"p@ss w0rd"
    with pytest.raises(Exception, match="InvalidCiphertext"):
        boto("kms").decrypt(CiphertextBlob=blob, EncryptionContext={"LambdaFunctionName": "otherFunction"})


def test_encrypt_reads_stdin_and_drops_exactly_one_trailing_newline(boto: Any, kms_key: str) -> None:
    """A value piped on stdin loses one trailing newline, and only one."""
    result = run("encrypt", "--kms-key", kms_key, "--function", "fn", input="secret\n\n")
    blob = base64.b64decode(result.stdout.strip())
    plain = boto("kms").decrypt(CiphertextBlob=blob, EncryptionContext={"LambdaFunctionName": "fn"})
    assert plain["Plaintext"] == b"secret\n"


def test_encrypted_value_is_read_back_by_kms_env(kms_key: str) -> None:
    """What ``encrypt`` makes, ``kms-env://`` decrypts: ``get --reveal`` shows it, ``get`` masks it."""
    blob = run("encrypt", "tok-123", "--kms-key", kms_key, "--function", "fn").stdout.decode().strip()
    env = {"DEV_api_key": blob, "AWS_LAMBDA_FUNCTION_NAME": "fn"}
    masked = run("get", "api_key", "--stage", "DEV", "--source", "kms-env://", env=env)
    assert masked.returncode == 0, masked.stderr
    assert masked.stdout == b"********\n"
    shown = run("--source", "kms-env://", "get", "api_key", "--reveal", "--stage", "DEV", env=env)
    assert shown.stdout == b"tok-123\n"


def test_endpoint_url_option_reaches_boto3(aws_endpoint: str, kms_key: str) -> None:
    """``--endpoint-url`` overrides a dead AWS_ENDPOINT_URL in the environment."""
    dead = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:9"}
    args = ("encrypt", "x", "--kms-key", kms_key, "--function", "fn")
    assert run(*args, env=dead).returncode == 1
    assert run(*args, "--endpoint-url", aws_endpoint, env=dead).returncode == 0


def test_region_option_reaches_boto3(kms_key: str) -> None:
    """``--region`` selects another region, where the key does not exist: one error line, exit 1."""
    result = run("encrypt", "x", "--kms-key", kms_key, "--function", "fn", "--region", "eu-west-1")
    assert result.returncode == 1
    assert result.stdout == b""
    assert len(lines(result.stderr)) == 1
    assert "Traceback" not in result.stderr.decode()


def test_profile_option_reaches_boto3(aws_endpoint: str) -> None:
    """``--profile`` names the boto3 profile; an unknown one is a usage error (exit 2) in one line, with a hint."""
    result = run("encrypt", "x", "--kms-key", "k", "--function", "fn", "--profile", "no-such-profile-xyz")
    assert result.returncode == 2
    assert "no-such-profile-xyz" in result.stderr.decode()
    assert "no such AWS profile" in result.stderr.decode()
    assert len(lines(result.stderr)) == 1


def test_a_bad_source_url_is_one_line_exit_two() -> None:
    """A malformed source URL is a usage error: exit 2, one line, no traceback."""
    result = run("get", "k", "--stage", "DEV", "--source", "nosuch://x")
    assert result.returncode == 2
    assert len(lines(result.stderr)) == 1
    assert "unknown scheme" in result.stderr.decode()


def test_get_from_env_prints_the_value_only() -> None:
    """``get`` through ``env://`` prints exactly the value and a newline on stdout."""
    result = run("get", "greeting", "--stage", "DEV", env={"DEV_greeting": "héllo wörld"})
    assert result.returncode == 0
    assert result.stdout == "héllo wörld\n".encode()
    assert result.stderr == b""


def test_get_of_a_missing_key_exits_one_naming_key_and_stage() -> None:
    """A key no source has exits 1 with one line naming the key, the stage and the sources tried."""
    result = run("get", "missing_key", "--stage", "DEV", "--source", "env://")
    assert result.returncode == 1
    assert result.stdout == b""
    message = result.stderr.decode()
    assert len(message.splitlines()) == 1
    assert "missing_key" in message
    assert "DEV" in message
    assert "env://" in message


def test_commands_needing_a_stage_without_one_exit_two() -> None:
    """No --stage and no CONFSTAGE_STAGE is a usage error."""
    result = run("get", "k")
    assert result.returncode == 2
    assert "--stage" in result.stderr.decode()


def test_store_commands_without_a_writable_source_exit_two() -> None:
    """``put`` with only env:// configured says which sources can be written, exit 2."""
    result = run("put", "k", "v", "--stage", "DEV", "--source", "env://")
    assert result.returncode == 2
    assert "no writable source" in result.stderr.decode()
