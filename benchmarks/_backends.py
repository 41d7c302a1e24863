"""What the benchmark measures per source: the seeded data, confstage's URL, and the same work done by
raw boto3 (one call per key, and the best batch call) and by Powertools' parameters utility.

Seeding uses plain boto3, never the confstage CLI, so the benchmark depends only on the runtime.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FUNCTION", "STAGE", "Backend", "Clients", "PowertoolsSpec", "World", "backends", "seed"]

STAGE = "PRD"
FUNCTION = "confstage-bench"  # AWS_LAMBDA_FUNCTION_NAME: the KMS encryption context of kms-env values
PREFIX = "app"


class Clients:
    """boto3 clients for the raw-boto3 and Powertools contenders, each with the probe attached.

    ``reuse=False`` makes a new session and client on every call (a cold start pays that);
    ``reuse=True`` hands out one client per service (a warm container).
    """

    def __init__(self, *, endpoint: str | None, region: str, attach: Callable[[Any], None], reuse: bool) -> None:
        self.endpoint = endpoint
        self.region = region
        self.attach = attach
        self.reuse = reuse
        self._made: dict[tuple[str, str], Any] = {}

    def client(self, service: str) -> Any:
        return self._make(service, "client")

    def resource(self, service: str) -> Any:
        return self._make(service, "resource")

    def _make(self, service: str, kind: str) -> Any:
        found = self._made.get((service, kind)) if self.reuse else None
        if found is not None:
            return found
        import boto3.session

        session = boto3.session.Session(region_name=self.region)
        made = getattr(session, kind)(service, endpoint_url=self.endpoint)
        self.attach(made if kind == "client" else made.meta.client)
        if self.reuse:
            self._made[(service, kind)] = made
        return made


@dataclass
class World:
    """The names of everything seeded for one run, and the values a stage holds."""

    endpoint: str | None
    region: str
    keys: list[str]
    values: dict[str, str]
    suffix: str = field(default_factory=lambda: secrets.token_hex(4))
    kms_key_id: str = ""
    env: dict[str, str] = field(default_factory=dict)  # variables of the env:// and kms-env:// sources

    @property
    def bucket(self) -> str:
        return f"confstage-bench-{self.suffix}"

    @property
    def table(self) -> str:
        return f"confstage-bench-{self.suffix}"

    @property
    def flat_table(self) -> str:
        return f"confstage-bench-flat-{self.suffix}"

    @property
    def ssm_root(self) -> str:
        return f"/confstage-bench-{self.suffix}"

    @property
    def secret_prefix(self) -> str:
        return f"confstage-bench-{self.suffix}"

    def boto(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=self.region)


@dataclass(frozen=True)
class PowertoolsSpec:
    """How Powertools' parameters utility reads this backend."""

    provider: str
    make: Callable[[Clients, World], Any]  # the provider used for get (cold and warm)
    name_of: Callable[[World, str], str]  # the name Powertools' get() takes for a key
    stage_call: str
    stage: Callable[[Any, World, Sequence[str]], Mapping[str, str]]
    make_stage: Callable[[Clients, World], Any] | None = None  # a second provider when get_multiple needs it
    json_document: bool = False  # get(name, transform="json")[key]
    note: str = ""

    def one(self, provider: Any, world: World, key: str, max_age: int | None = None) -> str:
        kwargs: dict[str, Any] = {} if max_age is None else {"max_age": max_age}
        if self.json_document:
            document = provider.get(self.name_of(world, key), transform="json", **kwargs)
            return str(document[key])
        return str(provider.get(self.name_of(world, key), **kwargs))

    def warm_stmt(self) -> str:
        """The statement timed for a cached get (``g`` = provider.get, ``n`` = name, ``k`` = key)."""
        if self.json_document:
            return "g(n, max_age=300, transform='json')[k]"
        return "g(n, max_age=300)"


@dataclass(frozen=True)
class Backend:
    """One source as the benchmark sees it."""

    name: str
    title: str
    url: Callable[[World], str]
    module: str  # the confstage module that must exist for the source to be measured
    service: str | None = None  # boto3 service of the raw contender
    one_call: str = ""
    one: Callable[[Any, World, str], str] | None = None
    batch_call: str | None = None
    batch: Callable[[Any, World, Sequence[str]], Mapping[str, str]] | None = None
    powertools: PowertoolsSpec | None = None
    persisted: bool = True  # a new process should find the stage in /tmp
    notes: tuple[str, ...] = ()

    def batch_requests(self, keys: int) -> int | None:
        """Requests the best batch call needs for ``keys`` keys (what a whole stage should cost)."""
        if self.batch_call is None:
            return None
        if self.name == "ssm":
            return max(1, math.ceil(keys / 10))
        if self.name == "dynamodb-flat":
            return max(1, math.ceil(keys / 100))
        return 1


# -- raw boto3: one call per key, and the best batch call --------------------------------------------


def _kms_one(client: Any, world: World, key: str) -> str:
    blob = base64.b64decode(world.env[f"KMS_{STAGE}_{key}"])
    response = client.decrypt(CiphertextBlob=blob, EncryptionContext={"LambdaFunctionName": FUNCTION})
    plaintext: bytes = response["Plaintext"]
    return plaintext.decode()


def _s3_object(client: Any, world: World, key: str) -> str:
    body: bytes = client.get_object(Bucket=world.bucket, Key=f"{PREFIX}/{STAGE}/{key}")["Body"].read()
    return body.decode()


def _s3_document(client: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    body: bytes = client.get_object(Bucket=world.bucket, Key=f"{PREFIX}/{STAGE}/config.json")["Body"].read()
    document: dict[str, str] = json.loads(body)
    return document


def _ddb_get(client: Any, world: World, key: str) -> str:
    item = client.get_item(TableName=world.table, Key={"stage": {"S": STAGE}, "key": {"S": key}})["Item"]
    return str(item["value"]["S"])


def _ddb_query(client: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    request: dict[str, Any] = {
        "TableName": world.table,
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "stage"},
        "ExpressionAttributeValues": {":s": {"S": STAGE}},
    }
    for _page in range(10_000):  # bounded: a stage is far smaller than 10,000 pages of 1 MB
        response = client.query(**request)
        found.update({item["key"]["S"]: item["value"]["S"] for item in response.get("Items", [])})
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found


def _flat_get(client: Any, world: World, key: str) -> str:
    item = client.get_item(TableName=world.flat_table, Key={"stage": {"S": f"{key}_{STAGE}"}})["Item"]
    return str(item["value"]["S"])


def _flat_batch(client: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {
            world.flat_table: {"Keys": [{"stage": {"S": f"{k}_{STAGE}"}} for k in keys[start : start + 100]]}
        }
        for _attempt in range(10):  # bounded retries of UnprocessedKeys
            response = client.batch_get_item(RequestItems=pending)
            for item in response["Responses"].get(world.flat_table, []):
                found[item["stage"]["S"].removesuffix(f"_{STAGE}")] = item["value"]["S"]
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                break
    return found


def _ssm_get(client: Any, world: World, key: str) -> str:
    return str(client.get_parameter(Name=f"{world.ssm_root}/{STAGE}/{key}", WithDecryption=True)["Parameter"]["Value"])


def _ssm_by_path(client: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    path = f"{world.ssm_root}/{STAGE}"
    found: dict[str, str] = {}
    paginator = client.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path, WithDecryption=True, Recursive=True):
        for parameter in page.get("Parameters", []):
            found[parameter["Name"][len(path) + 1 :]] = parameter["Value"]
    return found


def _secret(client: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    document: dict[str, str] = json.loads(
        client.get_secret_value(SecretId=f"{world.secret_prefix}/{STAGE}")["SecretString"]
    )
    return document


# -- Powertools ---------------------------------------------------------------------------------------


def _pt_ddb_flat(clients: Clients, world: World) -> Any:
    from aws_lambda_powertools.utilities.parameters import DynamoDBProvider

    # Powertools' get() is a GetItem on a hash-key-only table (its default layout is id/value): the flat
    # table is exactly that shape, with the hash key named "stage".
    return DynamoDBProvider(
        table_name=world.flat_table, key_attr="stage", value_attr="value", boto3_client=clients.resource("dynamodb")
    )


def _pt_ddb_stage_key(clients: Clients, world: World) -> Any:
    from aws_lambda_powertools.utilities.parameters import DynamoDBProvider

    # get_multiple() is a Query on a hash + sort key table (default id/sk/value): the stage-key table.
    return DynamoDBProvider(
        table_name=world.table,
        key_attr="stage",
        sort_attr="key",
        value_attr="value",
        boto3_client=clients.resource("dynamodb"),
    )


def _pt_ssm(clients: Clients, world: World) -> Any:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    return SSMProvider(boto3_client=clients.client("ssm"))


def _pt_secrets(clients: Clients, world: World) -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=clients.client("secretsmanager"))


def _pt_get_each(provider: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    return {k: str(provider.get(f"{k}_{STAGE}")) for k in keys}


def _pt_get_multiple(provider: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    return dict(provider.get_multiple(STAGE))


def _pt_ssm_multiple(provider: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    return dict(provider.get_multiple(f"{world.ssm_root}/{STAGE}"))


def _pt_secret_document(provider: Any, world: World, keys: Sequence[str]) -> dict[str, str]:
    return dict(provider.get(f"{world.secret_prefix}/{STAGE}", transform="json"))


_PT_DDB_NOTE = "Powertools get() reads the flat table (GetItem); get_multiple() the stage-key table (Query)"


def backends() -> list[Backend]:
    """Every source, in the order of the report."""
    ddb_flat_get = PowertoolsSpec(
        provider="DynamoDBProvider",
        make=_pt_ddb_flat,
        name_of=lambda w, k: f"{k}_{STAGE}",
        stage_call="get_multiple (Query)",
        stage=_pt_get_multiple,
        make_stage=_pt_ddb_stage_key,
        note=_PT_DDB_NOTE,
    )
    return [
        Backend(
            name="env",
            title="env:// (environment variables)",
            url=lambda w: "env://",
            module="confstage.sources.env",
            persisted=False,
            notes=("no AWS call and no boto3/Powertools equivalent; not written to /tmp by design (immutable)",),
        ),
        Backend(
            name="kms-env",
            title="kms-env:// (KMS-encrypted environment variables)",
            url=lambda w: "kms-env://?template=KMS_{STAGE}_{key}",
            module="confstage.sources.kms_env",
            service="kms",
            one_call="Decrypt",
            one=_kms_one,
            persisted=False,
            notes=(
                "KMS has no batch decrypt: one Decrypt per key; plaintexts are secrets, never written to /tmp",
                "no Powertools equivalent",
            ),
        ),
        Backend(
            name="s3-objects",
            title="s3:// layout=objects (one object per key)",
            url=lambda w: f"s3://{w.bucket}/{PREFIX}?layout=objects",
            module="confstage.sources.s3",
            service="s3",
            one_call="GetObject",
            one=_s3_object,
            notes=("S3 has no batch GET: a stage costs one GetObject per key", "no Powertools S3 provider"),
        ),
        Backend(
            name="s3-document",
            title="s3:// layout=document (config.json per stage)",
            url=lambda w: f"s3://{w.bucket}/{PREFIX}?layout=document",
            module="confstage.sources.s3",
            service="s3",
            one_call="GetObject(config.json)",
            one=lambda c, w, k: _s3_document(c, w, (k,))[k],
            batch_call="GetObject(config.json)",
            batch=_s3_document,
            notes=("no Powertools S3 provider",),
        ),
        Backend(
            name="dynamodb-stage-key",
            title="dynamodb:// layout=stage-key (PK stage, SK key)",
            url=lambda w: f"dynamodb://{w.table}",
            module="confstage.sources.dynamodb",
            service="dynamodb",
            one_call="GetItem",
            one=_ddb_get,
            batch_call="Query",
            batch=_ddb_query,
            powertools=ddb_flat_get,
        ),
        Backend(
            name="dynamodb-flat",
            title="dynamodb:// layout=flat (hash key {key}_{STAGE})",
            url=lambda w: f"dynamodb://{w.flat_table}?layout=flat",
            module="confstage.sources.dynamodb",
            service="dynamodb",
            one_call="GetItem",
            one=_flat_get,
            batch_call="BatchGetItem",
            batch=_flat_batch,
            powertools=PowertoolsSpec(
                provider="DynamoDBProvider",
                make=_pt_ddb_flat,
                name_of=lambda w, k: f"{k}_{STAGE}",
                stage_call="get() per key (no BatchGetItem in Powertools)",
                stage=_pt_get_each,
            ),
        ),
        Backend(
            name="ssm",
            title="ssm:// (Parameter Store, /PATH/{STAGE}/{key})",
            url=lambda w: f"ssm://{w.ssm_root}",
            module="confstage.sources.ssm",
            service="ssm",
            one_call="GetParameter",
            one=_ssm_get,
            batch_call="GetParametersByPath",
            batch=_ssm_by_path,
            powertools=PowertoolsSpec(
                provider="SSMProvider",
                make=_pt_ssm,
                name_of=lambda w, k: f"{w.ssm_root}/{STAGE}/{k}",
                stage_call="get_multiple (GetParametersByPath)",
                stage=_pt_ssm_multiple,
            ),
            notes=("seeded as String parameters (SecureString values would be withheld from /tmp)",),
        ),
        Backend(
            name="secretsmanager",
            title="secretsmanager:// (one JSON secret per stage)",
            url=lambda w: f"secretsmanager://{w.secret_prefix}",
            module="confstage.sources.secretsmanager",
            service="secretsmanager",
            one_call="GetSecretValue",
            one=lambda c, w, k: _secret(c, w, (k,))[k],
            batch_call="GetSecretValue",
            batch=_secret,
            powertools=PowertoolsSpec(
                provider="SecretsProvider",
                make=_pt_secrets,
                name_of=lambda w, k: f"{w.secret_prefix}/{STAGE}",
                stage_call="get(transform=json)",
                stage=_pt_secret_document,
                json_document=True,
            ),
            persisted=False,
            notes=("secrets are never written to /tmp: a new process fetches the secret again, by design",),
        ),
    ]


# -- seeding -------------------------------------------------------------------------------------------


def seed(world: World, wanted: set[str]) -> None:
    """Create and fill what the wanted backends read (plain boto3)."""
    values = world.values
    if "kms-env" in wanted:
        kms = world.boto("kms")
        world.kms_key_id = kms.create_key(Description="confstage benchmark")["KeyMetadata"]["KeyId"]
        for key, value in values.items():
            blob = kms.encrypt(
                KeyId=world.kms_key_id, Plaintext=value.encode(), EncryptionContext={"LambdaFunctionName": FUNCTION}
            )["CiphertextBlob"]
            world.env[f"KMS_{STAGE}_{key}"] = base64.b64encode(blob).decode()
    if "env" in wanted:
        world.env.update({f"{STAGE}_{key}": value for key, value in values.items()})
    if wanted & {"s3-objects", "s3-document"}:
        s3 = world.boto("s3")
        if world.region == "us-east-1":
            s3.create_bucket(Bucket=world.bucket)
        else:
            s3.create_bucket(Bucket=world.bucket, CreateBucketConfiguration={"LocationConstraint": world.region})
        s3.put_bucket_versioning(Bucket=world.bucket, VersioningConfiguration={"Status": "Enabled"})
        for key, value in values.items():
            s3.put_object(Bucket=world.bucket, Key=f"{PREFIX}/{STAGE}/{key}", Body=value.encode())
        s3.put_object(Bucket=world.bucket, Key=f"{PREFIX}/{STAGE}/config.json", Body=json.dumps(values).encode())
    if wanted & {"dynamodb-stage-key", "dynamodb-flat"}:
        ddb = world.boto("dynamodb")
        ddb.create_table(
            TableName=world.table,
            KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "stage", "AttributeType": "S"},
                {"AttributeName": "key", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=world.flat_table,
            KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "stage", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for name in (world.table, world.flat_table):
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        items = list(values.items())
        for start in range(0, len(items), 25):
            chunk = items[start : start + 25]
            _write_all(
                ddb,
                {
                    world.table: [
                        {"PutRequest": {"Item": {"stage": {"S": STAGE}, "key": {"S": k}, "value": {"S": v}}}}
                        for k, v in chunk
                    ],
                },
            )
            _write_all(
                ddb,
                {
                    world.flat_table: [
                        {"PutRequest": {"Item": {"stage": {"S": f"{k}_{STAGE}"}, "value": {"S": v}}}} for k, v in chunk
                    ],
                },
            )
    if "ssm" in wanted:
        ssm = world.boto("ssm")
        for key, value in values.items():
            ssm.put_parameter(Name=f"{world.ssm_root}/{STAGE}/{key}", Value=value, Type="String", Overwrite=True)
    if "secretsmanager" in wanted:
        world.boto("secretsmanager").create_secret(
            Name=f"{world.secret_prefix}/{STAGE}", SecretString=json.dumps(values)
        )


def _write_all(ddb: Any, request: dict[str, Any]) -> None:
    for _attempt in range(10):  # bounded retries of UnprocessedItems
        request = ddb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return
    raise RuntimeError("DynamoDB kept items unprocessed while seeding")


def cleanup(world: World, wanted: set[str]) -> list[str]:
    """Delete what ``seed`` made (on an endpoint that outlives the run); returns what could not be deleted."""
    problems: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as exc:  # cleanup is best effort: report, never mask the results
            problems.append(f"{what}: {type(exc).__name__}: {exc}")

    if wanted & {"s3-objects", "s3-document"}:
        s3 = world.boto("s3")

        def empty_bucket() -> None:
            paginator = s3.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=world.bucket):
                marks = page.get("Versions", []) + page.get("DeleteMarkers", [])
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in marks]
                if objects:
                    s3.delete_objects(Bucket=world.bucket, Delete={"Objects": objects})
            s3.delete_bucket(Bucket=world.bucket)

        attempt(f"bucket {world.bucket}", empty_bucket)
    if wanted & {"dynamodb-stage-key", "dynamodb-flat"}:
        ddb = world.boto("dynamodb")
        for name in (world.table, world.flat_table):
            attempt(f"table {name}", lambda name=name: ddb.delete_table(TableName=name))  # type: ignore[misc]
    if "ssm" in wanted:
        ssm = world.boto("ssm")
        names = [f"{world.ssm_root}/{STAGE}/{key}" for key in world.keys]
        for start in range(0, len(names), 10):
            chunk = names[start : start + 10]
            attempt("ssm parameters", lambda chunk=chunk: ssm.delete_parameters(Names=chunk))  # type: ignore[misc]
    if "secretsmanager" in wanted:
        attempt(
            "secret",
            lambda: world.boto("secretsmanager").delete_secret(
                SecretId=f"{world.secret_prefix}/{STAGE}", ForceDeleteWithoutRecovery=True
            ),
        )
    if world.kms_key_id:
        attempt(
            "kms key",
            lambda: world.boto("kms").schedule_key_deletion(KeyId=world.kms_key_id, PendingWindowInDays=7),
        )
    return problems
