"""The lite transport's signatures accepted by an implementation no one here wrote: moto with IAM auth switched on.

A dedicated moto server (its own process: the auth switch and the backends are global to a server) is seeded
without auth, then ``POST /moto-api/reset-auth`` with body ``0`` makes it verify every request's SigV4 signature
and IAM permissions. The lite transport then reads every runtime source's service with temporary credentials
from STS AssumeRole (a session token); a wrong secret, an unknown key or a missing token is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import boto3
import pytest

from confstage.transport import AwsError, AwsRequest
from confstage.transport.lite.transport import LiteTransport

from ._motoserver import enforce_iam, moto_process

pytestmark = pytest.mark.integration

SEED = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


class World(NamedTuple):
    """The authenticating endpoint, the role's temporary credentials, and what was seeded."""

    url: str
    credentials: dict[str, str]
    kms_key: str
    ciphertext: bytes


def _client(url: str, service: str, **credentials: str) -> Any:
    keys = credentials or {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.session.Session(region_name="us-east-1", **keys).client(service, endpoint_url=url)


def _seed(url: str) -> tuple[str, bytes]:
    ddb = _client(url, "dynamodb")
    ddb.create_table(
        TableName="cfg",
        KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("stage", "key")],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="cfg", Item={"stage": {"S": "DEV"}, "key": {"S": "db_url"}, "value": {"S": "postgres://h"}})
    s3 = _client(url, "s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="app/DEV/ü x+y.json", Body=b'{"k": "v"}')
    ssm = _client(url, "ssm")
    ssm.put_parameter(Name="/app/DEV/plain", Value="p", Type="String")
    ssm.put_parameter(Name="/app/DEV/secret", Value="s3cr3t", Type="SecureString")
    _client(url, "secretsmanager").create_secret(Name="app/DEV", SecretString=json.dumps({"k": "v"}))
    kms = _client(url, "kms")
    key_id: str = kms.create_key()["KeyMetadata"]["KeyId"]
    ciphertext: bytes = kms.encrypt(KeyId=key_id, Plaintext=b"plain", EncryptionContext={"f": "n"})["CiphertextBlob"]
    return key_id, ciphertext


@pytest.fixture(scope="module", name="world")
def fixture_world() -> Iterator[World]:
    """A moto server of its own, seeded, then verifying every signature; the role's temporary credentials."""
    with moto_process() as url:
        key_id, ciphertext = _seed(url)
        iam = _client(url, "iam")
        user = iam.create_user(UserName="deployer")["User"]
        iam.put_user_policy(UserName="deployer", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        access = iam.create_access_key(UserName="deployer")["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": user["Arn"]}, "Action": "sts:AssumeRole"}],
        }
        role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName="reader", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        enforce_iam(url)
        sts = _client(
            url, "sts", aws_access_key_id=access["AccessKeyId"], aws_secret_access_key=access["SecretAccessKey"]
        )
        temporary = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="lite")["Credentials"]
        credentials = {
            "AWS_ACCESS_KEY_ID": temporary["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": temporary["SecretAccessKey"],
            "AWS_SESSION_TOKEN": temporary["SessionToken"],
        }
        yield World(url, credentials, key_id, ciphertext)


def lite(world: World, **override: str) -> LiteTransport:
    environ = {**world.credentials, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": world.url, **override}
    return LiteTransport(environ={k: v for k, v in environ.items() if v})


READS = [
    AwsRequest(
        "dynamodb",
        "Query",
        {
            "TableName": "cfg",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "stage"},
            "ExpressionAttributeValues": {":s": {"S": "DEV"}},
        },
    ),
    AwsRequest("dynamodb", "GetItem", {"TableName": "cfg", "Key": {"stage": {"S": "DEV"}, "key": {"S": "db_url"}}}),
    AwsRequest("s3", "GetObject", {"Bucket": "cfg", "Key": "app/DEV/ü x+y.json"}),
    AwsRequest("s3", "ListObjectsV2", {"Bucket": "cfg", "Prefix": "app/DEV/"}),
    AwsRequest("ssm", "GetParametersByPath", {"Path": "/app/DEV", "WithDecryption": True}),
    AwsRequest("secretsmanager", "GetSecretValue", {"SecretId": "app/DEV"}),
    AwsRequest("secretsmanager", "BatchGetSecretValue", {"SecretIdList": ["app/DEV"]}),
    AwsRequest("sts", "GetCallerIdentity", {}),
]


def test_assumed_role_credentials_sign_every_runtime_read(world: World) -> None:
    """DynamoDB, S3, SSM, Secrets Manager, STS and KMS all accept the lite transport's session-token signatures."""
    transport = lite(world)
    answers = {f"{r.service}:{r.operation}": transport.call(r) for r in READS}
    assert answers["dynamodb:Query"]["Items"][0]["value"] == {"S": "postgres://h"}
    assert answers["dynamodb:GetItem"]["Item"]["value"] == {"S": "postgres://h"}
    assert answers["s3:GetObject"]["Body"].read() == b'{"k": "v"}'
    assert [c["Key"] for c in answers["s3:ListObjectsV2"]["Contents"]] == ["app/DEV/ü x+y.json"]
    assert {p["Name"]: p["Value"] for p in answers["ssm:GetParametersByPath"]["Parameters"]} == {
        "/app/DEV/plain": "p",
        "/app/DEV/secret": "s3cr3t",
    }
    assert json.loads(answers["secretsmanager:GetSecretValue"]["SecretString"]) == {"k": "v"}
    assert len(answers["secretsmanager:BatchGetSecretValue"]["SecretValues"]) == 1
    assert ":assumed-role/reader/lite" in answers["sts:GetCallerIdentity"]["Arn"]
    decrypted = transport.call(
        AwsRequest("kms", "Decrypt", {"CiphertextBlob": world.ciphertext, "EncryptionContext": {"f": "n"}})
    )
    assert decrypted["Plaintext"] == b"plain"
    data_key = transport.call(AwsRequest("kms", "GenerateDataKey", {"KeyId": world.kms_key, "KeySpec": "AES_256"}))
    assert len(data_key["Plaintext"]) == 32


@pytest.mark.parametrize("request_", READS[:1] + READS[2:4] + READS[4:6], ids=lambda r: f"{r.service}:{r.operation}")
def test_a_wrong_secret_is_refused(world: World, request_: AwsRequest) -> None:
    """The right key id with a wrong secret fails with the service's signature error (not a parse or network error)."""
    with pytest.raises(AwsError) as caught:
        lite(world, AWS_SECRET_ACCESS_KEY="wrong" + world.credentials["AWS_SECRET_ACCESS_KEY"]).call(request_)
    assert caught.value.code in ("SignatureDoesNotMatch", "InvalidSignatureException")
    assert caught.value.status in (400, 403)


def test_an_unknown_key_and_a_missing_token_are_refused(world: World) -> None:
    """An access key the server never issued, or the role's key without its session token, is refused."""
    query = READS[0]
    with pytest.raises(AwsError) as unknown:
        lite(world, AWS_ACCESS_KEY_ID="ASIANOTISSUED0000000").call(query)
    assert unknown.value.code in ("InvalidClientTokenId", "UnrecognizedClientException")
    with pytest.raises(AwsError) as tokenless:
        lite(world, AWS_SESSION_TOKEN="").call(query)
    assert tokenless.value.status in (400, 403)
    with pytest.raises(AwsError) as s3_unknown:
        lite(world, AWS_ACCESS_KEY_ID="ASIANOTISSUED0000000").call(READS[2])
    assert s3_unknown.value.code == "InvalidAccessKeyId"
