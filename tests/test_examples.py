"""``examples/``: the SAM template lints clean and wires every source with least privilege."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from confstage.cli.iam import build_policy
from confstage.sources import build_sources

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TEMPLATE = EXAMPLES / "template.yaml"


@pytest.fixture(name="template", scope="module")
def fixture_template() -> dict[str, Any]:
    """The template as cfn-lint reads it (intrinsic-function tags decoded)."""
    from cfnlint.decode import decode

    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert decoded is not None
    return dict(decoded)


def test_cfn_lint_reports_no_errors_or_warnings() -> None:
    """cfn-lint (the one in this environment) finds no error and no warning in the template."""
    cfn_lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent)) or shutil.which("cfn-lint")
    assert cfn_lint is not None, "cfn-lint is in the dev extra"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [cfn_lint, "--format", "parseable", str(TEMPLATE)], capture_output=True, text=True, env=env, timeout=300
    )
    # cfn-lint's exit status is a bit field: 2 errors, 4 warnings, 8 informational.
    assert result.returncode & 0b110 == 0, result.stdout + result.stderr


def test_function_is_the_example_handler_behind_dev_and_prd(template: dict[str, Any]) -> None:
    """The function runs examples/handler.py's lambda_handler, published as DEV and aliased as PRD."""
    resources = template["Resources"]
    function = resources["HelloFunction"]["Properties"]
    assert (function["Handler"], function["CodeUri"]) == ("handler.lambda_handler", ".")
    assert (EXAMPLES / "handler.py").is_file()
    assert function["AutoPublishAlias"] == "DEV"
    aliases = [r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert aliases == ["PRD"]


def test_sources_variable_names_every_source_and_parses(template: dict[str, Any]) -> None:
    """CONFSTAGE_SOURCES lists one URL per scheme, and each builds (placeholders filled in)."""
    variables = template["Resources"]["HelloFunction"]["Properties"]["Environment"]["Variables"]
    spec = variables["CONFSTAGE_SOURCES"]["Fn::Sub"]
    filled = re.sub(r"\$\{[^}]+\}", "example", spec)
    sources = build_sources(filled)
    assert [s.url.split("://")[0] for s in sources] == ["kms-env", "env", "dynamodb", "s3", "ssm", "secretsmanager"]
    assert {"CONFSTAGE_ALIASES", "CONFSTAGE_STAGE"} <= set(variables)


def _unsub(node: Any) -> Any:
    """The template with every ``!Sub "text"`` replaced by its text, as iam-policy writes ARNs."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return node["Fn::Sub"]
        return {key: _unsub(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unsub(value) for value in node]
    return node


def test_policy_is_what_iam_policy_derives(template: dict[str, Any]) -> None:
    """The function's policy is build_policy's for its sources, stages DEV and PRD, its key and its name."""
    function = template["Resources"]["HelloFunction"]["Properties"]
    urls = function["Environment"]["Variables"]["CONFSTAGE_SOURCES"]["Fn::Sub"].split()
    (policy,) = function["Policies"]
    expected = build_policy(
        urls,
        stages=("DEV", "PRD"),
        kms_keys=("arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/${ConfigKeyId}",),
        function="${AWS::StackName}-hello",
    )
    assert _unsub(policy) == expected


def test_policies_name_exact_resources(template: dict[str, Any]) -> None:
    """No statement grants an action on Resource "*", and DynamoDB/S3 statements name this stack's ARNs."""
    (policy,) = template["Resources"]["HelloFunction"]["Properties"]["Policies"]
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert "*" not in resources, statement["Sid"]
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
        if str(action).startswith(("dynamodb:", "s3:")):
            assert all(isinstance(r, dict) for r in resources), statement["Sid"]  # !GetAtt / !Sub of the resource
    assert actions == {
        "dynamodb:Query",
        "s3:GetObject",
        "s3:ListBucket",
        "ssm:GetParametersByPath",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
    }
