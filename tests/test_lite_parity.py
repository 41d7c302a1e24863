"""The lite transport and plain boto3 read the same answers from the local AWS endpoint as the same output shapes.

Each runtime read confstage makes (and a few neighbours) goes once through boto3 and once through the lite
transport; the parsed results must be equal field for field (``ResponseMetadata`` aside), and errors must
carry the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from confstage.transport import AwsError, AwsRequest
from confstage.transport.lite.transport import LiteTransport

pytestmark = pytest.mark.integration

VALUES = {"db_url": "postgres://h/db", "unicode": "ünïcødé 中文 𝄞", "spaces": "  a  b  ", "json": '{"a": [1, 2]}'}


@pytest.fixture(name="lite")
def fixture_lite(aws_endpoint: str) -> Iterator[LiteTransport]:
    """A lite transport reading the environment the fixtures set (AWS_ENDPOINT_URL on the local endpoint)."""
    transport = LiteTransport(environ=os.environ)
    yield transport
    transport.close()


Boto = Callable[[str], Any]


def strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def both(boto: Boto, lite: LiteTransport, service: str, operation: str, snake: str, **params: Any) -> dict[str, Any]:
    """Call through boto3 and lite; assert equal shapes; return lite's answer."""
    theirs = strip(getattr(boto(service), snake)(**params))
    ours = strip(lite.call(AwsRequest(service, operation, params)))
    assert ours == theirs
    return ours


def same_error(boto: Boto, lite: LiteTransport, service: str, operation: str, snake: str, **params: Any) -> str:
    """Both fail; with the same code (S3's 304, which botocore reports as "304", is "NotModified")."""
    with pytest.raises(ClientError) as theirs:
        getattr(boto(service), snake)(**params)
    with pytest.raises(AwsError) as ours:
        lite.call(AwsRequest(service, operation, params))
    code = str(theirs.value.response["Error"]["Code"])
    assert ours.value.code == {"304": "NotModified"}.get(code, code)
    assert ours.value.status == theirs.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return ours.value.code


def test_dynamodb_query_getitem_batchgetitem(boto: Boto, lite: LiteTransport) -> None:
    """Query (with paging and projections), GetItem and BatchGetItem: same items, S/N/B/M/L attribute values alike."""
    ddb = boto("dynamodb")
    for table, schema in (("stagekey", [("stage", "HASH"), ("key", "RANGE")]), ("flat", [("stage", "HASH")])):
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": n, "KeyType": t} for n, t in schema],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n, _ in schema],
            BillingMode="PAY_PER_REQUEST",
        )
    extra = {"n": {"N": "12.50"}, "b": {"B": b"\x00\xff"}, "m": {"M": {"l": {"L": [{"S": "x"}, {"BOOL": True}]}}}}
    for key, value in VALUES.items():
        ddb.put_item(
            TableName="stagekey", Item={"stage": {"S": "DEV"}, "key": {"S": key}, "value": {"S": value}, **extra}
        )
        ddb.put_item(TableName="flat", Item={"stage": {"S": f"{key}_DEV"}, "value": {"S": value}})
    query = {
        "TableName": "stagekey",
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "stage"},
        "ExpressionAttributeValues": {":s": {"S": "DEV"}},
    }
    assert len(both(boto, lite, "dynamodb", "Query", "query", **query)["Items"]) == len(VALUES)
    projected = {
        **query,
        "ProjectionExpression": "#k, #v",
        "ExpressionAttributeNames": {"#s": "stage", "#k": "key", "#v": "value"},
    }
    both(boto, lite, "dynamodb", "Query", "query", **projected)
    page = both(boto, lite, "dynamodb", "Query", "query", Limit=2, **query)
    both(boto, lite, "dynamodb", "Query", "query", Limit=2, ExclusiveStartKey=page["LastEvaluatedKey"], **query)
    item_key = {"stage": {"S": "DEV"}, "key": {"S": "unicode"}}
    assert both(boto, lite, "dynamodb", "GetItem", "get_item", TableName="stagekey", Key=item_key)["Item"]["b"] == {
        "B": b"\x00\xff"
    }
    both(
        boto,
        lite,
        "dynamodb",
        "GetItem",
        "get_item",
        TableName="stagekey",
        Key={"stage": {"S": "DEV"}, "key": {"S": "no"}},
    )
    keys = [{"stage": {"S": f"{k}_DEV"}} for k in [*VALUES, "missing"]]
    theirs = boto("dynamodb").batch_get_item(RequestItems={"flat": {"Keys": keys}})["Responses"]["flat"]
    ours = lite.call(AwsRequest("dynamodb", "BatchGetItem", {"RequestItems": {"flat": {"Keys": keys}}}))
    assert sorted(ours["Responses"]["flat"], key=str) == sorted(theirs, key=str)
    assert same_error(boto, lite, "dynamodb", "Query", "query", **{**query, "TableName": "nope"}) == (
        "ResourceNotFoundException"
    )


def test_ssm_get_parameters_by_path(boto: Boto, lite: LiteTransport) -> None:
    """GetParametersByPath, decrypted or not, recursive, paged: same parameters, timestamps as datetimes."""
    ssm = boto("ssm")
    for key, value in VALUES.items():
        ssm.put_parameter(Name=f"/app/DEV/{key}", Value=value, Type="String")
    ssm.put_parameter(Name="/app/DEV/secret", Value="s3cr3t", Type="SecureString")
    ssm.put_parameter(Name="/app/DEV/nested/list", Value="a,b", Type="StringList")
    for decrypt in (True, False):
        ours = both(
            boto, lite, "ssm", "GetParametersByPath", "get_parameters_by_path", Path="/app/DEV", WithDecryption=decrypt
        )
        assert {p["Name"] for p in ours["Parameters"]} == {f"/app/DEV/{k}" for k in [*VALUES, "secret"]}
    both(boto, lite, "ssm", "GetParametersByPath", "get_parameters_by_path", Path="/app/DEV", Recursive=True)
    page = both(boto, lite, "ssm", "GetParametersByPath", "get_parameters_by_path", Path="/app/DEV", MaxResults=2)
    both(
        boto,
        lite,
        "ssm",
        "GetParametersByPath",
        "get_parameters_by_path",
        Path="/app/DEV",
        MaxResults=2,
        NextToken=page["NextToken"],
    )
    both(boto, lite, "ssm", "GetParametersByPath", "get_parameters_by_path", Path="/nothing/here")


def test_secretsmanager_get_and_batch_get(boto: Boto, lite: LiteTransport) -> None:
    """GetSecretValue (string and binary secrets) and BatchGetSecretValue: same values, versions, dates."""
    sm = boto("secretsmanager")
    sm.create_secret(Name="app/DEV", SecretString=json.dumps(VALUES))
    sm.create_secret(Name="app/BIN", SecretBinary=b"\x00\x01binary")
    for name in ("app/DEV", "app/BIN"):
        both(boto, lite, "secretsmanager", "GetSecretValue", "get_secret_value", SecretId=name)
    ours = both(boto, lite, "secretsmanager", "GetSecretValue", "get_secret_value", SecretId="app/BIN")
    assert ours["SecretBinary"] == b"\x00\x01binary"
    both(
        boto,
        lite,
        "secretsmanager",
        "GetSecretValue",
        "get_secret_value",
        SecretId="app/DEV",
        VersionStage="AWSCURRENT",
    )
    both(
        boto,
        lite,
        "secretsmanager",
        "BatchGetSecretValue",
        "batch_get_secret_value",
        SecretIdList=["app/DEV", "app/BIN"],
    )
    filters = [{"Key": "name", "Values": ["app/"]}]
    both(boto, lite, "secretsmanager", "BatchGetSecretValue", "batch_get_secret_value", Filters=filters)
    assert same_error(boto, lite, "secretsmanager", "GetSecretValue", "get_secret_value", SecretId="app/NONE") == (
        "ResourceNotFoundException"
    )


def test_kms_decrypt_and_generate_data_key(boto: Boto, lite: LiteTransport, kms_key: str) -> None:
    """Decrypt gives the same plaintext bytes; a data key from lite opens with boto3; bad contexts fail alike."""
    kms = boto("kms")
    context = {"LambdaFunctionName": "helloStagedWorld"}
    blob = kms.encrypt(KeyId=kms_key, Plaintext="ünïcødé".encode(), EncryptionContext=context)["CiphertextBlob"]
    ours = both(boto, lite, "kms", "Decrypt", "decrypt", CiphertextBlob=blob, EncryptionContext=context)
    assert ours["Plaintext"] == "ünïcødé".encode()
    same_error(boto, lite, "kms", "Decrypt", "decrypt", CiphertextBlob=blob, EncryptionContext={"other": "x"})
    same_error(boto, lite, "kms", "Decrypt", "decrypt", CiphertextBlob=b"not a ciphertext")
    key = lite.call(
        AwsRequest("kms", "GenerateDataKey", {"KeyId": kms_key, "KeySpec": "AES_256", "EncryptionContext": context})
    )
    assert len(key["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=key["CiphertextBlob"], EncryptionContext=context)["Plaintext"] == key["Plaintext"]


def get_both(boto: Boto, lite: LiteTransport, **params: Any) -> tuple[dict[str, Any], bytes]:
    """GetObject through both: equal fields and equal body bytes; lite's answer and body."""
    theirs = strip(boto("s3").get_object(**params))
    their_body = theirs.pop("Body").read()
    ours = strip(lite.call(AwsRequest("s3", "GetObject", params)))
    our_body = ours.pop("Body").read()
    assert our_body == their_body
    for name, value in theirs.items():
        if not name.startswith("Checksum"):  # boto3 asks for checksums (x-amz-checksum-mode); lite does not
            assert ours[name] == value, name
    return ours, our_body


def test_s3_get_object_and_list(boto: Boto, lite: LiteTransport) -> None:
    """GetObject (ranges, versions, metadata, 304, 404), HeadObject and ListObjectsV2 (odd keys, paging) alike."""
    s3 = boto("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_bucket_versioning(Bucket="cfg", VersioningConfiguration={"Status": "Enabled"})
    keys = [
        "app/DEV/config.json",
        "app/DEV/ü x+y=z",
        "app/DEV/a%2Fb",
        "app/DEV/sub/deep",
        "app/PRD/k",
        "app/DEV/~!$&'()*,;",
    ]
    for key in keys:
        s3.put_object(
            Bucket="cfg", Key=key, Body=json.dumps(VALUES).encode(), ContentType="application/json", Metadata={"m": "v"}
        )
    for key in keys:
        ours, _ = get_both(boto, lite, Bucket="cfg", Key=key)
        assert ours["Metadata"] == {"m": "v"}
    old = s3.put_object(Bucket="cfg", Key="app/DEV/config.json", Body=b"old")["VersionId"]
    s3.put_object(Bucket="cfg", Key="app/DEV/config.json", Body=b"new")
    assert get_both(boto, lite, Bucket="cfg", Key="app/DEV/config.json")[1] == b"new"
    ours, body = get_both(boto, lite, Bucket="cfg", Key="app/DEV/config.json", VersionId=old)
    assert (body, ours["VersionId"]) == (b"old", old)
    ours, body = get_both(boto, lite, Bucket="cfg", Key="app/DEV/ü x+y=z", Range="bytes=2-5")
    assert ours["ContentRange"].startswith("bytes 2-5/")
    etag = ours["ETag"]
    assert same_error(
        boto, lite, "s3", "GetObject", "get_object", Bucket="cfg", Key="app/DEV/ü x+y=z", IfNoneMatch=etag
    ) == ("NotModified")
    assert same_error(boto, lite, "s3", "GetObject", "get_object", Bucket="cfg", Key="nope") == "NoSuchKey"
    assert same_error(boto, lite, "s3", "GetObject", "get_object", Bucket="nobucket", Key="k") == "NoSuchBucket"
    head = strip(lite.call(AwsRequest("s3", "HeadObject", {"Bucket": "cfg", "Key": "app/DEV/sub/deep"})))
    theirs = strip(s3.head_object(Bucket="cfg", Key="app/DEV/sub/deep"))
    assert {k: v for k, v in head.items() if not k.startswith("Checksum")} == {
        k: v for k, v in theirs.items() if not k.startswith("Checksum")
    }
    listed = both(boto, lite, "s3", "ListObjectsV2", "list_objects_v2", Bucket="cfg", Prefix="app/DEV/")
    assert {c["Key"] for c in listed["Contents"]} == {k for k in keys if k.startswith("app/DEV/")}
    both(boto, lite, "s3", "ListObjectsV2", "list_objects_v2", Bucket="cfg", Prefix="app/", Delimiter="/")
    page = both(boto, lite, "s3", "ListObjectsV2", "list_objects_v2", Bucket="cfg", MaxKeys=2)
    assert page["IsTruncated"]
    both(
        boto,
        lite,
        "s3",
        "ListObjectsV2",
        "list_objects_v2",
        Bucket="cfg",
        MaxKeys=2,
        ContinuationToken=page["NextContinuationToken"],
    )
    both(boto, lite, "s3", "ListObjectsV2", "list_objects_v2", Bucket="cfg", Prefix="none/")


def test_sts_get_caller_identity(boto: Boto, lite: LiteTransport) -> None:
    """GetCallerIdentity (the query protocol): same account, ARN and user id."""
    both(boto, lite, "sts", "GetCallerIdentity", "get_caller_identity")
