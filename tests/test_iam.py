"""``confstage iam-policy``: exact resources, least-privilege actions, never a wildcard on data stores."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confstage.cli.iam import Account, build_policy
from confstage.errors import ConfigurationError

from ._cli import run

HERE = Account(partition="aws", region="eu-west-1", account="123456789012")


def statements(policy: dict[str, Any], action_prefix: str) -> list[dict[str, Any]]:
    return [s for s in policy["Statement"] if any(a.startswith(action_prefix) for a in s["Action"])]


def assert_no_wildcard_on_data_stores(policy: dict[str, Any]) -> None:
    for statement in policy["Statement"]:
        if any(a.startswith(("dynamodb:", "s3:")) for a in statement["Action"]):
            assert statement["Resource"] != "*"
            assert "*" not in statement["Resource"]


def test_dynamodb_stage_key_needs_query_on_the_exact_table() -> None:
    """The stage-key layout is read with Query only, on the table's own ARN."""
    policy = build_policy(["dynamodb://config"], account=HERE)
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["dynamodb:Query"]
    assert statement["Resource"] == ["arn:aws:dynamodb:eu-west-1:123456789012:table/config"]
    assert "Condition" not in statement


def test_dynamodb_flat_needs_getitem_and_batchgetitem() -> None:
    """The flat layout is read with GetItem and BatchGetItem, not Query."""
    (statement,) = build_policy(["dynamodb://legacy?layout=flat"], account=HERE)["Statement"]
    assert statement["Action"] == ["dynamodb:BatchGetItem", "dynamodb:GetItem"]


def test_a_stage_narrows_dynamodb_by_leading_keys() -> None:
    """With a stage, DynamoDB reads are limited to that partition (stage-key) or ``*_STAGE`` ids (flat)."""
    (stage_key,) = build_policy(["dynamodb://t"], account=HERE, stages=["PRD"])["Statement"]
    assert stage_key["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["PRD"]}}
    (flat,) = build_policy(["dynamodb://t?layout=flat"], account=HERE, stages=["PRD"])["Statement"]
    assert flat["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*_PRD"]}}


def test_s3_objects_are_scoped_to_bucket_prefix_and_stage() -> None:
    """GetObject is granted on the prefix (and stage) folder only; ListBucket on the exact bucket."""
    policy = build_policy(["s3://cfg-bucket/app"], account=HERE, stages=["DEV"])
    get, listing = policy["Statement"]
    assert get["Action"] == ["s3:GetObject"]
    assert get["Resource"] == ["arn:aws:s3:::cfg-bucket/app/DEV/*"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Resource"] == ["arn:aws:s3:::cfg-bucket"]
    document = build_policy(["s3://cfg-bucket?layout=document"], account=HERE)["Statement"][0]
    assert document["Resource"] == ["arn:aws:s3:::cfg-bucket/*/config.json"]


def test_ssm_and_secrets_manager_resources() -> None:
    """SSM is read by path; Secrets Manager by secret ARN with the random ``-??????`` suffix."""
    policy = build_policy(["ssm:///app/config", "secretsmanager://app"], account=HERE, stages=["PRD"])
    ssm, secret = policy["Statement"]
    assert ssm["Action"] == ["ssm:GetParametersByPath"]
    assert ssm["Resource"] == [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/config/PRD",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/config/PRD/*",
    ]
    assert secret["Action"] == ["secretsmanager:GetSecretValue"]
    assert secret["Resource"] == [  # the name alone too: a stage without a secret is authorised against it
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/PRD",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/PRD-??????",
    ]


def test_secrets_layout_reads_each_secret_by_arn_and_lists_on_the_wildcard() -> None:
    """Per-key secrets: GetSecretValue on ``secret:PREFIX/STAGE/*``; BatchGetSecretValue and ListSecrets, which
    have no resource type in AWS's permissions reference, on ``*`` (values stay behind GetSecretValue)."""
    read, batch = build_policy(["secretsmanager://app?layout=secrets"], account=HERE, stages=["PRD"])["Statement"]
    assert read["Action"] == ["secretsmanager:GetSecretValue"]
    assert read["Resource"] == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/PRD/*"]
    assert batch["Action"] == ["secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"]
    assert batch["Resource"] == ["*"]
    assert "Condition" not in read
    assert "Condition" not in batch


def test_secrets_layout_of_every_stage_and_of_two_prefixes() -> None:
    """Without --stage the read covers ``secret:PREFIX/*``; two such sources share one ``*`` statement."""
    policy = build_policy(
        ["secretsmanager://app?layout=secrets", "secretsmanager://team/shared?layout=secrets"],
        account=HERE,
        stages=["PRD", "DEV"],
    )
    reads = [s["Resource"] for s in policy["Statement"] if s["Action"] == ["secretsmanager:GetSecretValue"]]
    assert reads == [
        [f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/{s}/*" for s in ("PRD", "DEV")],
        [f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/shared/{s}/*" for s in ("PRD", "DEV")],
    ]
    assert sum(s["Resource"] == ["*"] for s in policy["Statement"]) == 1
    every = build_policy(["secretsmanager://app?layout=secrets"], account=HERE)["Statement"][0]
    assert every["Resource"] == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/*"]
    with pytest.raises(ConfigurationError, match="layout"):
        build_policy(["secretsmanager://app?layout=flat"])


def test_cli_policy_for_the_secrets_layout_of_one_stage() -> None:
    """``iam-policy --source secretsmanager://app?layout=secrets --stage PRD`` prints the two statements."""
    result = run(
        "iam-policy",
        "--source",
        "secretsmanager://app?layout=secrets",
        "--stage",
        "PRD",
        "--account",
        "123456789012",
        "--region",
        "us-east-1",
    )
    assert result.returncode == 0, result.stderr
    read, batch = json.loads(result.stdout)["Statement"]
    assert read["Resource"] == ["arn:aws:secretsmanager:us-east-1:123456789012:secret:app/PRD/*"]
    assert (batch["Action"], batch["Resource"]) == (
        ["secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"],
        ["*"],
    )


def test_kms_env_decrypt_requires_the_lambda_encryption_context() -> None:
    """``kms-env://`` gets kms:Decrypt on the named key, only with LambdaFunctionName in the context."""
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = build_policy(["kms-env://", "env://"], account=HERE, kms_keys=[key], function="helloStagedWorld")
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["kms:Decrypt"]
    assert statement["Resource"] == [key]
    assert statement["Condition"] == {"StringLike": {"kms:EncryptionContext:LambdaFunctionName": "helloStagedWorld"}}


def test_secure_values_get_decrypt_bound_by_context_and_service() -> None:
    """``--secure`` adds kms:Decrypt bound to confstage's envelope context, and via SSM for SecureStrings."""
    policy = build_policy(["dynamodb://t", "ssm:///app"], account=HERE, secure=True, stages=["PRD"])
    envelope, via = statements(policy, "kms:")
    assert envelope["Resource"] == ["arn:aws:kms:eu-west-1:123456789012:key/*"]
    assert envelope["Condition"] == {
        "StringEquals": {
            "kms:EncryptionContext:confstage:purpose": "config-value",
            "kms:EncryptionContext:confstage:stage": ["PRD"],
        }
    }
    assert via["Condition"] == {"StringEquals": {"kms:ViaService": ["ssm.eu-west-1.amazonaws.com"]}}


def test_no_secure_flag_means_no_kms_statement_for_stores() -> None:
    """Stores without ``--secure`` or ``--kms-key`` get no KMS permission at all."""
    assert statements(build_policy(["dynamodb://t", "s3://b"], account=HERE), "kms:") == []


def test_a_key_named_by_alias_is_matched_through_resource_aliases() -> None:
    """An alias cannot be a Decrypt resource: the key is matched with kms:ResourceAliases."""
    policy = build_policy(["kms-env://"], account=HERE, kms_keys=["alias/app"])
    (statement,) = policy["Statement"]
    assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ["alias/app"]}


def test_placeholders_are_cloudformation_pseudo_parameters() -> None:
    """Without an account, ARNs use ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId}."""
    (statement,) = build_policy(["dynamodb://t"])["Statement"]
    assert statement["Resource"] == ["arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/t"]


def test_an_unknown_scheme_or_bad_key_is_a_configuration_error() -> None:
    """Sources iam-policy cannot describe, and malformed key names, are rejected."""
    with pytest.raises(ConfigurationError):
        build_policy(["memory://"])
    with pytest.raises(ConfigurationError):
        build_policy(["kms-env://"], kms_keys=["not a key"])


def test_cli_prints_a_policy_without_wildcards_on_data_stores() -> None:
    """The command prints valid JSON on stdout, and no DynamoDB or S3 statement has a ``*`` resource."""
    result = run(
        "iam-policy",
        "--source",
        "kms-env:// env:// dynamodb://config s3://bucket/app ssm:///app secretsmanager://app",
        "--account",
        "123456789012",
        "--region",
        "us-east-1",
        "--secure",
        "--function",
        "fn",
    )
    assert result.returncode == 0, result.stderr
    policy = json.loads(result.stdout)
    assert policy["Version"] == "2012-10-17"
    assert_no_wildcard_on_data_stores(policy)
    text = json.dumps(policy)
    assert "${AWS::" not in text
    assert {a for s in policy["Statement"] for a in s["Action"]} == {
        "dynamodb:Query",
        "s3:GetObject",
        "s3:ListBucket",
        "ssm:GetParametersByPath",
        "secretsmanager:GetSecretValue",
        "kms:Decrypt",
    }


def test_cli_needs_named_sources() -> None:
    """Without --source or CONFSTAGE_SOURCES there is nothing to describe: exit 2."""
    assert run("iam-policy").returncode == 2


def test_cache_sealing_key_gets_data_key_rights_bound_to_its_purpose() -> None:
    """With a /tmp cache sealing key, the policy allows GenerateDataKey and Decrypt on it, for that purpose only."""
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    policy = build_policy(["dynamodb://t"], cache_kms_key=arn)
    (statement,) = [s for s in policy["Statement"] if s["Sid"].startswith("SealTmpCache")]
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == [arn]
    assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:confstage:purpose": "tmp-cache"}}
    assert not [s for s in build_policy(["dynamodb://t"])["Statement"] if s["Sid"].startswith("SealTmpCache")]


@pytest.mark.parametrize(
    ("args", "env", "regions"),
    [
        (["--fallback-regions", " us-west-2, eu-west-1 ,us-west-2"], {}, ["us-east-1", "us-west-2", "eu-west-1"]),
        ([], {"CONFSTAGE_FALLBACK_REGIONS": "eu-west-1"}, ["us-east-1", "eu-west-1"]),
        (["--fallback-regions", ""], {"CONFSTAGE_FALLBACK_REGIONS": "eu-west-1"}, ["us-east-1"]),  # the flag wins
        ([], {"CONFSTAGE_FALLBACK_REGIONS": None}, ["us-east-1"]),
    ],
)
def test_cli_fallback_regions_from_the_flag_or_the_variable(
    args: list[str], env: dict[str, str | None], regions: list[str]
) -> None:
    """A pipeline that makes the policy has no Lambda environment: ``--fallback-regions`` says where reads may go,
    and the variable is its default."""
    from ._cli import invoke

    common = ["--source", "ssm:///app", "--region", "us-east-1", "--account", "123456789012"]
    result = invoke("iam-policy", *common, *args, env=env)
    assert result.exit_code == 0, result.stderr
    (read,) = json.loads(result.stdout)["Statement"]
    assert [arn.split(":")[3] for arn in read["Resource"]] == regions


@pytest.mark.parametrize(
    ("args", "env", "where"),
    [
        (["--fallback-regions", "us-west-2,nowhere"], {}, "--fallback-regions"),
        ([], {"CONFSTAGE_FALLBACK_REGIONS": "nowhere"}, "CONFSTAGE_FALLBACK_REGIONS"),
    ],
)
def test_cli_a_fallback_that_is_not_a_region_is_a_usage_error_naming_where(
    args: list[str], env: dict[str, str | None], where: str
) -> None:
    from ._cli import invoke

    result = invoke("iam-policy", "--source", "ssm:///app", *args, env=env)
    assert result.exit_code == 2
    assert f"Invalid value for {where}: 'nowhere' is not an AWS region" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "url",
    [
        "dynamodb://cfg",
        "dynamodb://flat?layout=flat",
        "ssm:///app",
        "secretsmanager://app",
        "secretsmanager://app?layout=secrets",
        "appconfig://shop/main",
        "s3://cfg-{region}/app",
    ],
)
@pytest.mark.parametrize("account", [Account(), HERE], ids=["placeholders", "literal"])
def test_every_home_region_arn_is_granted_in_each_fallback_region(url: str, account: Account) -> None:
    """The policy as a template (``${AWS::Region}``, whose colons are not field separators) or for a literal
    region: each regional ARN of the home region is there for each fallback region too."""
    policy = build_policy([url], account=account, secure=True, fallback_regions=["us-west-2"])
    arns = [arn for s in policy["Statement"] for arn in s["Resource"] if arn.startswith("arn:")]
    home = f":{account.region}:"  # the region field, between the service and the account
    regional = [arn for arn in arns if home in arn]
    assert regional, arns
    for arn in regional:
        assert arn.replace(home, ":us-west-2:", 1) in arns
    if "{region}" in url:  # a bucket per region, named
        assert any("cfg-us-west-2" in arn for arn in arns)


def test_a_fallback_in_another_partition_is_refused() -> None:
    """A literal home region and a fallback of another partition: refused, both named; a placeholder home
    (the template's ``${AWS::Region}``) cannot be judged and is taken."""
    china = Account(partition="aws-cn", region="cn-north-1", account="123456789012")
    with pytest.raises(ConfigurationError, match=r"'us-west-2' is in the partition aws, the home region 'cn-north-1'"):
        build_policy(["ssm:///app"], account=china, fallback_regions=["us-west-2"])
    with pytest.raises(ConfigurationError, match=r"fallback_regions of ssm:///app\?fallback_regions=us-west-2: "):
        build_policy(["ssm:///app?fallback_regions=us-west-2"], account=china)
    assert build_policy(["ssm:///app"], account=china, fallback_regions=["cn-northwest-1"])
    assert build_policy(["ssm:///app"], fallback_regions=["cn-northwest-1"])
