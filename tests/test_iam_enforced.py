"""``confstage iam-policy`` under enforcement: each generated policy suffices for the runtime's reads, and is tight.

A moto server of this module's own (``tests/_motoserver.py``) is seeded for stages PRD and DEV with auth off,
through confstage's own CLI as an operator would (``init``, ``import``, ``put --secure --kms-key``,
``encrypt --function``). Then it enforces IAM, and a role ``reader`` is assumed (STS AssumeRole, a session
token). For each case the real CLI writes the policy (``confstage iam-policy --source … --region … --account …
--stage PRD …``), which becomes the role's only policy (swapped between tests: moto reads a role's policies on
every request), and the runtime reads as a Lambda would: ``Config(...).prefetch`` through botocore, then the
very requests it made, replayed through ``LiteTransport.call``.

What moto (5.x: ``moto/iam/access_control.py``, ``moto/core/authorization.py``) enforces, pinned by
``test_what_moto_enforces`` so that an upgrade which changes it is noticed:

* the SigV4 signature, and the action (``service:Operation``; ``*`` wildcards, but case-sensitive);
* an explicit Deny over any Allow;
* the ``Resource`` element for S3 only (``arn:aws:s3:::bucket`` and ``…:::bucket/key``), among the services
  confstage reads. DynamoDB, SSM, Secrets Manager and KMS authorise against the resource ``*``, which an ARN
  pattern never matches (getmoto/moto#9581): as generated, a statement naming a table, parameter path, secret
  or key denies everything. Patterns are regular expressions with ``*`` made ``.*``, so ``?`` is a quantifier
  and a ``secret:app/PRD-??????`` pattern is a 500;
* no ``Condition``: a service call passes no request context, so every condition holds
  (``dynamodb:LeadingKeys``, ``kms:EncryptionContext:*``, ``kms:ViaService``, ``s3:prefix`` alike);
* no ``NotResource``: a statement without ``Resource`` matches every resource;
* not S3's rule that a missing key is 403 to a caller without ``s3:ListBucket`` (moto answers NoSuchKey);
* no service calls KMS on the caller's behalf (SSM SecureStrings, Secrets Manager), so ``kms:ViaService`` is
  never asked.
* of BatchGetSecretValue, only its own action: not the ListSecrets its filter needs, nor the GetSecretValue AWS
  asks for each secret it returns (a secret the caller may not read comes back in ``Errors``).

So each policy faces two evaluators, and the documents are pinned exactly besides:

1. moto, on the policy as moto can evaluate it (``for_moto``): S3 statements as generated, every other statement
   with ``Resource: "*"`` (conditions kept: moto ignores them). That proves every action, and S3's ARNs.
2. ``iam_allows``: AWS's evaluation rules for exactly the elements the builder emits (Allow statements;
   ``Action``; ``Resource`` with ``*`` and ``?``; ``StringEquals``, ``StringLike``, ``ForAllValues:…`` and
   ``ForAnyValue:StringEquals``), applied to the requests the runtime really made, with the ARNs moto assigned
   (the secret's random suffix, the key a ciphertext names, the secrets a batch returned) and the request
   context AWS documents for them (``dynamodb:LeadingKeys``: the partition keys asked for;
   ``kms:EncryptionContext:*``: the request's context; ``kms:ResourceAliases``: the key's aliases; a missing S3
   key also needs ``s3:ListBucket`` to be a 404). That proves the other ARNs and every condition, the DEV reads'
   denial among them. It is this module's model of AWS, not AWS: what it cannot see (``kms:ViaService``, asked
   by SSM and Secrets Manager themselves) is checked in the document only.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from confstage import Config, aws, crypto
from confstage.errors import ConfstageError, SourceError
from confstage.transport import AwsError, AwsRequest
from confstage.transport.botocore import add_client_hook
from confstage.transport.lite.transport import LiteTransport

from ._cli import invoke, run
from ._motoserver import enforce_iam, moto_process

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
FUNCTION = "helloStagedWorld"
STAGES = ("PRD", "DEV")
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# moto refuses a JSON service's request with IAM's XML error body, which a JSON parser cannot read: a bare 403.
DENIED = frozenset({"AccessDenied", "AccessDeniedException", "403"})
FROM_ENV = "from-env"  # what env://, last in every chain, holds for db_url: served only if a store fell through


def values(stage: str) -> dict[str, str]:
    """What every store holds for a stage (``token`` secure where the store can say so)."""
    return {
        "db_url": f"postgres://{stage.lower()}.db.internal/app",
        "feature": "on" if stage == "PRD" else "off",
        "token": f"tok-{stage}-ünïcode",
        "only_env": FROM_ENV,
    }


# -- the world: a seeded moto server enforcing IAM, a role to read as, an admin to arrange with ----------------


@dataclass
class World:
    """The endpoint, the admin's and the role's credentials, the keys, and what the runtime's env holds."""

    url: str
    admin_keys: dict[str, str]
    role_keys: dict[str, str]
    key: str  # ARN of the key that encrypts secure values and kms-env variables
    cache_key: str  # ARN of the key that seals the /tmp cache
    lambda_env: dict[str, str]  # PRD_token / DEV_token: ciphertexts made by `confstage encrypt --function`
    clients: dict[str, Any] = field(default_factory=dict)

    def admin(self, service: str) -> Any:
        """A boto3 client with the admin's credentials (allowed everything), for arranging and resolving ARNs."""
        if service not in self.clients:
            session = boto3.session.Session(region_name=REGION, **self.admin_keys)
            self.clients[service] = session.client(
                service, endpoint_url=self.url, config=BotoConfig(retries={"total_max_attempts": 1})
            )
        return self.clients[service]

    def use(self, policy: Mapping[str, Any]) -> None:
        """Make ``policy`` the role's only policy (as moto can evaluate it); none at all when it has no statement."""
        iam = self.admin("iam")
        if policy["Statement"]:
            document = json.dumps(for_moto(policy))
            iam.put_role_policy(RoleName="reader", PolicyName="confstage", PolicyDocument=document)
        elif iam.list_role_policies(RoleName="reader")["PolicyNames"]:
            iam.delete_role_policy(RoleName="reader", PolicyName="confstage")  # IAM takes no empty policy

    def role_environ(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": self.role_keys["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": self.role_keys["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": self.role_keys["aws_session_token"],
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.url,
        }

    def secret_arn(self, secret_id: str) -> str:
        """The secret's ARN, with the six random characters Secrets Manager gave it."""
        arn: str = self.admin("secretsmanager").describe_secret(SecretId=secret_id)["ARN"]
        return arn

    def key_of(self, call: Call) -> str:
        """The ARN of the key a KMS request uses: named (GenerateDataKey), or the one its ciphertext names (Decrypt)."""
        kms = self.admin("kms")
        if "KeyId" in call.params:
            arn: str = kms.describe_key(KeyId=call.params["KeyId"])["KeyMetadata"]["Arn"]
            return arn
        answer = kms.decrypt(CiphertextBlob=call.params["CiphertextBlob"], **_context_kwargs(call.params))
        key_id: str = answer["KeyId"]
        return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"

    def aliases_of(self, key_arn: str) -> list[str]:
        aliases = self.admin("kms").list_aliases(KeyId=key_arn.rsplit("/", 1)[1])["Aliases"]
        return [a["AliasName"] for a in aliases]


def _context_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"EncryptionContext": params["EncryptionContext"]} if params.get("EncryptionContext") else {}


def _cli(*args: str, env: Mapping[str, str], input: str | None = None) -> str:
    """``confstage ARGS`` in this process (the endpoint and credentials through the environment); its stdout."""
    result = invoke(*args, input=input, env=dict(env))
    assert result.exit_code == 0, (args, result.output, result.exception)
    return str(result.stdout)


STORES = (
    "dynamodb://cfg",
    "dynamodb://flat?layout=flat",
    "dynamodb://vault",
    "s3://cfg-bucket/app",
    "s3://cfg-bucket/doc?layout=document",
    "s3://cfg-bucket/vault",
    "ssm:///app",
    "secretsmanager://app",
    "secretsmanager://keys?layout=secrets",
)
SECURE_STORES = ("dynamodb://vault", "s3://cfg-bucket/vault", "ssm:///app")  # token: envelope / SecureString


def _seed(url: str) -> tuple[str, str, dict[str, str]]:
    """Every store, both stages, through confstage's CLI with auth off (the KMS keys through boto3: the CLI makes
    none); returns the two keys' ARNs and the kms-env variables."""
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    kms = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    kms_client = kms.client("kms", endpoint_url=url)
    key: str = kms_client.create_key(Description="values")["KeyMetadata"]["Arn"]
    cache_key: str = kms_client.create_key(Description="tmp cache")["KeyMetadata"]["Arn"]
    kms_client.create_alias(AliasName="alias/confstage-cache", TargetKeyId=cache_key)
    for store in ("dynamodb://cfg", "dynamodb://flat?layout=flat", "dynamodb://vault", "s3://cfg-bucket"):
        _cli("init", "--source", store, env=env)
    lambda_env = {}
    for stage in STAGES:
        plain = {k: v for k, v in values(stage).items() if k in ("db_url", "feature")}
        for store in STORES:
            # A secret's every value is a secret: Secrets Manager holds the token among the plain values.
            here = {**plain, "token": values(stage)["token"]} if store.startswith("secretsmanager:") else plain
            _cli("import", "-", "--source", store, "--stage", stage, env=env, input=json.dumps(here))
        for store in SECURE_STORES:
            _cli("put", "token", "--secure", "--kms-key", key, "--source", store, "--stage", stage, env=env,
                 input=values(stage)["token"])  # fmt: skip
        ciphertext = _cli("encrypt", "--kms-key", key, "--function", FUNCTION, env=env, input=values(stage)["token"])
        lambda_env[f"{stage}_token"] = ciphertext.strip()
    aws.reset()  # the CLI's clients carried the seeding credentials
    return key, cache_key, lambda_env


@pytest.fixture(scope="module", name="world")
def fixture_world() -> Iterator[World]:
    """A moto server of its own, seeded with auth off, then enforcing IAM; the role ``reader`` assumed."""
    with moto_process() as url:
        key, cache_key, lambda_env = _seed(url)
        session = boto3.session.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="t")
        iam = session.client("iam", endpoint_url=url)
        admin = iam.create_user(UserName="admin")["User"]
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        access = iam.create_access_key(UserName="admin")["AccessKey"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin["Arn"]}, "Action": "sts:AssumeRole"}],
        }
        role = iam.create_role(RoleName="reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        enforce_iam(url)
        admin_keys = {"aws_access_key_id": access["AccessKeyId"], "aws_secret_access_key": access["SecretAccessKey"]}
        world = World(url, admin_keys, {}, key, cache_key, lambda_env)
        temporary = world.admin("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="lambda")["Credentials"]
        world.role_keys = {
            "aws_access_key_id": temporary["AccessKeyId"],
            "aws_secret_access_key": temporary["SecretAccessKey"],
            "aws_session_token": temporary["SessionToken"],
        }
        yield world


# -- the policies: the real CLI, and the same document as moto can evaluate it --------------------------------


def iam_policy_args(sources: Sequence[str], options: Sequence[str], stage: str | None) -> list[str]:
    args = ["iam-policy", "--region", REGION, "--account", ACCOUNT, *options]
    for source in sources:
        args += ["--source", source]
    return args + (["--stage", stage] if stage is not None else [])


@functools.cache
def generated(sources: tuple[str, ...], options: tuple[str, ...] = (), stage: str | None = "PRD") -> dict[str, Any]:
    """``confstage iam-policy`` for ``sources`` with ``options`` (and ``--stage``): the CLI's own command, run in
    this process (``test_the_console_script_prints_the_same_policy`` runs the console script once, to match)."""
    # --region exports AWS_REGION/AWS_DEFAULT_REGION: given as the runner's env, they are restored after.
    result = invoke(*iam_policy_args(sources, options, stage), env={"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION})
    assert result.exit_code == 0, (result.output, result.exception)
    policy: dict[str, Any] = json.loads(result.stdout)
    return policy


def for_moto(policy: Mapping[str, Any]) -> dict[str, Any]:
    """``policy`` as moto can evaluate it: S3 statements as they are, every other one on the resource ``*``."""
    statements = []
    for statement in policy["Statement"]:
        if all(action.startswith("s3:") for action in statement["Action"]):
            statements.append(dict(statement))
        else:
            statements.append({**statement, "Resource": "*"})
    return {**policy, "Statement": statements}


def without(policy: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """``policy`` less its statement ``sid``."""
    kept = [s for s in policy["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(policy["Statement"]) - 1, sid
    return {**policy, "Statement": kept}


def sid_name(sid: str) -> str:
    """A statement's Sid without the builder's position number (``ReadSecret3`` -> ``ReadSecret``)."""
    return sid.rstrip("0123456789")


# -- this module's model of AWS's evaluation, for what moto does not evaluate -----------------------------------


class Authorization(NamedTuple):
    """One authorisation AWS makes for a request: the action, on a resource, in a request context."""

    action: str
    resource: str
    context: Mapping[str, str | list[str]]


def _glob(pattern: str, value: str, *, fold: bool = False) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` exactly one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None


_TESTS: dict[str, Callable[[str, str], bool]] = {"StringEquals": lambda p, v: p == v, "StringLike": _glob}


def _holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str | list[str]]) -> bool:
    """Every operator block, every key in it; a key's listed values are alternatives (AWS's rules)."""
    known = {name.lower(): value for name, value in context.items()}  # condition key names ignore case
    for operator, block in condition.items():
        qualifier, _, name = operator.rpartition(":")
        test = _TESTS[name]  # a KeyError: the builder emits an operator this model does not evaluate
        for key, wanted in block.items():
            options = [wanted] if isinstance(wanted, str) else list(wanted)
            present = known.get(key.lower())
            found = [] if present is None else [present] if isinstance(present, str) else list(present)

            def one(value: str, options: list[str] = options, test: Callable[[str, str], bool] = test) -> bool:
                return any(test(option, value) for option in options)

            if qualifier == "ForAllValues":
                holds = all(one(v) for v in found)  # true when the key is absent or empty: AWS's rule
            elif qualifier == "ForAnyValue":
                holds = any(one(v) for v in found)
            else:
                assert qualifier == "", operator
                holds = isinstance(present, str) and one(present)  # a missing key fails a single-valued test
            if not holds:
                return False
    return True


def iam_allows(policy: Mapping[str, Any], request: Authorization) -> bool:
    """Whether an Allow-only identity policy allows ``request`` (no Deny, NotAction or NotResource to weigh)."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        if (
            any(_glob(a, request.action, fold=True) for a in statement["Action"])
            and any(_glob(r, request.resource) for r in statement["Resource"])
            and _holds(statement.get("Condition", {}), request.context)
        ):
            return True
    return False


def authorizations(world: World, call: Call) -> list[Authorization]:
    """What AWS authorises for one request the runtime made (per the Service Authorization Reference)."""
    params = call.params
    arn = f"arn:aws:{call.service}:{REGION}:{ACCOUNT}"
    action = f"{call.service}:{call.operation}"
    if call.service == "dynamodb":
        # dynamodb:LeadingKeys: the partition key values the request names (the table's hash key is "stage").
        if call.operation == "Query":
            tables = {params["TableName"]: [v["S"] for v in params["ExpressionAttributeValues"].values()]}
        elif call.operation == "GetItem":
            tables = {params["TableName"]: [params["Key"]["stage"]["S"]]}
        else:
            assert call.operation == "BatchGetItem", call
            tables = {t: [k["stage"]["S"] for k in r["Keys"]] for t, r in params["RequestItems"].items()}
        return [
            Authorization(action, f"{arn}:table/{table}", {"dynamodb:LeadingKeys": keys})
            for table, keys in tables.items()
        ]
    if call.service == "s3":
        assert call.operation == "GetObject", call
        found = [Authorization(action, f"arn:aws:s3:::{params['Bucket']}/{params['Key']}", {})]
        if call.error == "NoSuchKey":  # a 404 rather than a 403 only for a caller that may list the bucket
            found.append(Authorization("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}", {}))
        return found
    if call.service == "ssm":
        assert call.operation == "GetParametersByPath", call
        return [Authorization(action, f"{arn}:parameter{params['Path']}", {})]
    if call.service == "secretsmanager" and call.operation == "BatchGetSecretValue":
        # No resource type for the call itself; with filters, ListSecrets too; then GetSecretValue on each secret
        # it returns (the BatchGetSecretValue API reference). The secrets are those the filter names.
        listed = world.admin("secretsmanager").list_secrets(Filters=params["Filters"])["SecretList"]
        return [
            Authorization(action, "*", {}),
            Authorization("secretsmanager:ListSecrets", "*", {}),
            *(Authorization(GET_SECRET, secret["ARN"], {}) for secret in listed),
        ]
    if call.service == "secretsmanager":
        assert call.operation == "GetSecretValue", call
        return [Authorization(action, world.secret_arn(params["SecretId"]), {})]
    assert call.service == "kms", call
    assert call.operation in ("Decrypt", "GenerateDataKey"), call
    key = world.key_of(call)
    context: dict[str, str | list[str]] = {
        f"kms:EncryptionContext:{k}": v for k, v in (params.get("EncryptionContext") or {}).items()
    }
    context["kms:ResourceAliases"] = world.aliases_of(key)
    return [Authorization(action, key, context)]


def denied_by_model(world: World, policy: Mapping[str, Any], calls: Sequence[Call]) -> list[Authorization]:
    return [a for call in calls for a in authorizations(world, call) if not iam_allows(policy, a)]


# -- reading as the Lambda does, recording every request ----------------------------------------------------


@dataclass
class Call:
    """One AWS request the runtime made through botocore, and the error code it got ('' for none)."""

    service: str
    operation: str
    params: dict[str, Any]
    error: str = ""

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


class Read(NamedTuple):
    """One read a function makes: its chain of sources (env:// last, to show any fall-through) and keys."""

    label: str
    sources: str
    keys: tuple[str, ...]
    cache_key: str | None = None  # CONFSTAGE_CACHE_KMS_KEY: a first process fills /tmp, a restart reads it


class Outcome(NamedTuple):
    """What a read returned or raised, and every request it made (a cache read's restart apart)."""

    values: dict[str, str] | None
    error: ConfstageError | None
    calls: list[Call]
    restart: list[Call]

    def denied(self) -> set[str]:
        """Actions the server refused."""
        return {c.action for c in self.calls + self.restart if c.error in DENIED}


@pytest.fixture(name="reader")
def fixture_reader(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Reader]:
    """Reads as the role, in a Lambda function's environment (its kms-env variables, AWS_LAMBDA_FUNCTION_NAME)."""
    for name, value in {**world.role_environ(), **world.lambda_env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("db_url", FROM_ENV)
    monkeypatch.setenv("only_env", FROM_ENV)
    reader = Reader(tmp_path)
    remove = add_client_hook(reader.attach)
    aws.reset()
    yield reader
    remove()


class Reader:
    """Runs reads under the role and records the requests they make (botocore's events on confstage's clients)."""

    _KEY = "confstage-test-call"

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.calls: list[Call] = []
        self.runs = 0

    def attach(self, client: Any) -> None:
        client.meta.events.register("provide-client-params", self._params)
        client.meta.events.register("after-call", self._after)

    def _params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        call = Call(model.service_model.service_name, model.name, dict(params))
        context[self._KEY] = call
        self.calls.append(call)

    def _after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        call = context.get(self._KEY)
        if call is not None and http_response.status_code >= 300:
            call.error = str(parsed.get("Error", {}).get("Code", "")) or str(http_response.status_code)

    def read(self, read: Read, stage: str) -> Outcome:
        """A new process's ``prefetch`` of ``read.keys`` for ``stage``; with a cache key, then a restarted one's."""
        cache_dir = ""
        if read.cache_key:
            self.runs += 1
            cache_dir = str(self.tmp_path / f"cache{self.runs}")
        first: list[Call] = []
        self.calls = []
        try:
            got = self._process(read, stage, cache_dir)
            if read.cache_key:
                first, self.calls = self.calls, []
                got = self._process(read, stage, cache_dir)
        except ConfstageError as exc:
            return Outcome(None, exc, first, self.calls) if first else Outcome(None, exc, self.calls, [])
        return Outcome(got, None, first, self.calls) if first else Outcome(got, None, self.calls, [])

    def _process(self, read: Read, stage: str, cache_dir: str) -> dict[str, str]:
        crypto.clear_data_keys()  # a new process holds no plaintext data key
        config = Config(read.sources, stage=stage, cache_dir=cache_dir, cache_kms_key=read.cache_key)
        return config.prefetch(list(read.keys))


def expected(read: Read, stage: str) -> dict[str, str]:
    return {k: values(stage)[k] for k in read.keys}


def replay(world: World, calls: Sequence[Call]) -> list[str]:
    """The same requests through the lite transport with the role's credentials; each one's error code ('')."""
    transport = LiteTransport(environ=world.role_environ())
    codes = []
    for call in calls:
        try:
            answer = transport.call(AwsRequest(call.service, call.operation, call.params))
        except AwsError as exc:
            codes.append(exc.code)
            continue
        body = answer.get("Body")
        if body is not None:
            body.read()
            body.close()
        codes.append("")
    return codes


# -- the cases: one per source and option ----------------------------------------------------------------------


class Case(NamedTuple):
    """A function's sources and ``iam-policy`` options, the reads it makes, and what each statement is for.

    ``removal``: for each statement (Sid less its number), the reads that moto refuses without it and the action
    refused; ``model_only``: further reads that need it where moto cannot tell (``iam_allows`` can);
    ``document_only``: statements for requests the runtime never makes itself (checked in the document);
    ``best_effort``: actions whose refusal degrades a read instead of failing it; ``dev``: for a read of stage
    DEV under the PRD policy, the actions moto refuses and the actions ``iam_allows`` refuses.
    """

    name: str
    sources: tuple[str, ...]
    options: tuple[str, ...]
    reads: tuple[Read, ...]
    removal: Mapping[str, Mapping[str, str]]
    dev: Mapping[str, tuple[frozenset[str], frozenset[str]]]
    model_only: Mapping[str, frozenset[str]] = {}
    document_only: frozenset[str] = frozenset()
    best_effort: frozenset[str] = frozenset()

    def policy(self, world: World, stage: str | None = "PRD") -> dict[str, Any]:
        options = tuple(o.format(key=world.key, cache_key=world.cache_key) for o in self.options)
        return generated(self.sources, options, stage)

    def reads_for(self, world: World) -> tuple[Read, ...]:
        return tuple(r._replace(cache_key=r.cache_key.format(cache_key=world.cache_key)) if r.cache_key else r
                     for r in self.reads)  # fmt: skip


def _set(*actions: str) -> frozenset[str]:
    return frozenset(actions)


QUERY, GET_ITEM, BATCH = "dynamodb:Query", "dynamodb:GetItem", "dynamodb:BatchGetItem"
GET_OBJECT, BY_PATH, GET_SECRET = "s3:GetObject", "ssm:GetParametersByPath", "secretsmanager:GetSecretValue"
BATCH_SECRETS, LIST_SECRETS = "secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"
DECRYPT, DATA_KEY = "kms:Decrypt", "kms:GenerateDataKey"

CASES = (
    Case(
        "dynamodb",
        ("dynamodb://cfg",),
        (),
        (Read("query", "dynamodb://cfg env://", ("db_url", "feature")),),
        removal={"ReadDynamoDBStage": {"query": QUERY}},
        dev={"query": (_set(), _set(QUERY))},
    ),
    Case(
        "dynamodb-flat",
        ("dynamodb://flat?layout=flat",),
        (),
        (
            Read("getitem", "dynamodb://flat?layout=flat env://", ("db_url",)),
            Read("batch", "dynamodb://flat?layout=flat env://", ("db_url", "feature")),
        ),
        removal={"ReadDynamoDBKeys": {"getitem": GET_ITEM, "batch": BATCH}},
        dev={"getitem": (_set(), _set(GET_ITEM)), "batch": (_set(), _set(BATCH))},
    ),
    Case(
        "s3",
        ("s3://cfg-bucket/app",),
        (),
        (Read("objects", "s3://cfg-bucket/app env://", ("db_url", "feature", "only_env")),),
        removal={"ReadS3Objects": {"objects": GET_OBJECT}, "ListS3BucketForNotFound": {}},
        # only_env is no object: AWS answers 404 (the chain goes on to env://) only to a caller that may list.
        model_only={"ListS3BucketForNotFound": _set("objects")},
        dev={"objects": (_set(GET_OBJECT), _set(GET_OBJECT))},
    ),
    Case(
        "s3-document",
        ("s3://cfg-bucket/doc?layout=document",),
        (),
        (Read("document", "s3://cfg-bucket/doc?layout=document env://", ("db_url", "feature")),),
        # The document exists: s3:ListBucket is for a stage without one (a 404, as the objects case shows).
        removal={"ReadS3Objects": {"document": GET_OBJECT}, "ListS3BucketForNotFound": {}},
        dev={"document": (_set(GET_OBJECT), _set(GET_OBJECT))},
    ),
    Case(
        "ssm",
        ("ssm:///app",),
        ("--kms-key", "{key}"),
        (Read("path", "ssm:///app env://", ("db_url", "token")),),
        removal={"ReadSSMParameters": {"path": BY_PATH}},
        document_only=_set("DecryptViaService"),
        dev={"path": (_set(), _set(BY_PATH))},
    ),
    Case(
        "secretsmanager",
        ("secretsmanager://app",),
        (),
        (Read("secret", "secretsmanager://app env://", ("db_url", "token")),),
        removal={"ReadSecret": {"secret": GET_SECRET}},
        dev={"secret": (_set(), _set(GET_SECRET))},
    ),
    Case(
        "secretsmanager-secrets",
        ("secretsmanager://keys?layout=secrets",),
        (),
        (Read("batch", "secretsmanager://keys?layout=secrets env://", ("db_url", "token")),),
        # moto authorises only the request's own action: BatchGetSecretValue (and ListSecrets, in the same
        # statement). Each secret's GetSecretValue, which AWS asks as well, is the model's to check.
        removal={"ReadSecrets": {}, "BatchReadSecrets": {"batch": BATCH_SECRETS}},
        model_only={"ReadSecrets": _set("batch")},
        dev={"batch": (_set(), _set(GET_SECRET))},
    ),
    Case(
        "kms-env",
        ("kms-env://",),
        ("--kms-key", "{key}", "--function", FUNCTION),
        (Read("variable", "kms-env:// env://", ("token",)),),
        removal={"DecryptLambdaEnvironment": {"variable": DECRYPT}},
        dev={"variable": (_set(), _set())},  # bound to the function, not the stage: DEV_token is its variable too
    ),
    Case(
        "secure",
        ("dynamodb://vault", "s3://cfg-bucket/vault"),
        ("--secure", "--kms-key", "{key}"),
        (
            Read("dynamodb", "dynamodb://vault env://", ("db_url", "token")),
            Read("s3", "s3://cfg-bucket/vault env://", ("db_url", "token", "only_env")),
        ),
        removal={
            "ReadDynamoDBStage": {"dynamodb": QUERY},
            "ReadS3Objects": {"s3": GET_OBJECT},
            "ListS3BucketForNotFound": {},
            "DecryptSecureValues": {"dynamodb": DECRYPT, "s3": DECRYPT},
        },
        model_only={"ListS3BucketForNotFound": _set("s3")},
        # moto lets the DEV Query through; then the DEV envelope's data key (context confstage:stage=DEV) too.
        dev={"dynamodb": (_set(), _set(QUERY, DECRYPT)), "s3": (_set(GET_OBJECT), _set(GET_OBJECT))},
    ),
    Case(
        "cache",
        ("ssm:///app",),
        ("--kms-key", "{key}", "--cache-kms-key", "{cache_key}"),
        (Read("sealed", "ssm:///app env://", ("db_url", "token"), cache_key="{cache_key}"),),
        removal={"ReadSSMParameters": {"sealed": BY_PATH}, "SealTmpCache": {"sealed": DATA_KEY}},
        # Without it the first process cannot seal (a warning; secrets stay in memory) and the restart, finding
        # nothing sealed, asks SSM again: it never gets to make the Decrypt the model says it needs.
        document_only=_set("DecryptViaService"),
        best_effort=_set(DATA_KEY),
        dev={"sealed": (_set(), _set(BY_PATH))},
    ),
    Case(
        "cache-alias",
        ("ssm:///app",),
        ("--cache-kms-key", "alias/confstage-cache"),
        (Read("sealed", "ssm:///app env://", ("db_url", "token"), cache_key="alias/confstage-cache"),),
        removal={"ReadSSMParameters": {"sealed": BY_PATH}, "SealTmpCache": {"sealed": DATA_KEY}},
        best_effort=_set(DATA_KEY),
        dev={"sealed": (_set(), _set(BY_PATH))},
    ),
)
BY_NAME = {case.name: case for case in CASES}
STAGE_BOUND = [case.name for case in CASES if case.name != "kms-env"]


# -- what moto enforces ------------------------------------------------------------------------------------------


def _role_client(world: World, service: str) -> Any:
    session = boto3.session.Session(region_name=REGION, **world.role_keys)
    return session.client(service, endpoint_url=world.url, config=BotoConfig(retries={"total_max_attempts": 1}))


def _outcome(request: Callable[[], Any]) -> str:
    """'ok', or the error code (the HTTP status when moto's body carries none)."""
    try:
        request()
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code") or exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return "ok"


def test_what_moto_enforces(world: World) -> None:
    """Pins moto's IAM evaluation as this module relies on it (see the module's docstring).

    Actions and S3 ARNs are enforced; other services' ARNs never match (the resource is ``*``); conditions
    and NotResource are not evaluated; ``?`` in a pattern breaks it; an explicit Deny wins. Should a moto upgrade
    change any of this, this fails first: then ``for_moto`` can keep more of each policy.
    """
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/cfg"
    ddb, s3, sm = (_role_client(world, s) for s in ("dynamodb", "s3", "secretsmanager"))
    query = functools.partial(
        ddb.query,
        TableName="cfg",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "stage"},
        ExpressionAttributeValues={":s": {"S": "PRD"}},
    )
    leading = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["NOT-PRD"]}}
    cases: list[tuple[str, list[dict[str, Any]], Callable[[], Any], str]] = [
        ("the exact table ARN", [{"Action": [QUERY], "Resource": [table]}], query, "403"),
        ("any resource", [{"Action": [QUERY], "Resource": "*"}], query, "ok"),
        ("another action", [{"Action": [GET_ITEM], "Resource": "*"}], query, "403"),
        ("an action in lower case", [{"Action": ["dynamodb:query"], "Resource": "*"}], query, "403"),
        ("a LeadingKeys condition not met", [{"Action": [QUERY], "Resource": "*", "Condition": leading}], query, "ok"),
        ("NotResource naming the table", [{"Action": [QUERY], "NotResource": [table]}], query, "ok"),
        (
            "an explicit Deny",
            [{"Action": [QUERY], "Resource": "*"}, {"Effect": "Deny", "Action": [QUERY], "Resource": "*"}],
            query,
            "403",
        ),
        (
            "an S3 object ARN of the prefix",
            [{"Action": [GET_OBJECT], "Resource": ["arn:aws:s3:::cfg-bucket/app/PRD/*"]}],
            lambda: s3.get_object(Bucket="cfg-bucket", Key="app/PRD/db_url"),
            "ok",
        ),
        (
            "an S3 object ARN of another prefix",
            [{"Action": [GET_OBJECT], "Resource": ["arn:aws:s3:::cfg-bucket/app/DEV/*"]}],
            lambda: s3.get_object(Bucket="cfg-bucket", Key="app/PRD/db_url"),
            "AccessDenied",
        ),
        (
            "a missing S3 key without s3:ListBucket",
            [{"Action": [GET_OBJECT], "Resource": ["arn:aws:s3:::cfg-bucket/app/PRD/*"]}],
            lambda: s3.get_object(Bucket="cfg-bucket", Key="app/PRD/no-such-key"),
            "NoSuchKey",
        ),
        (
            "a '?' in a secret's ARN pattern",
            [
                {
                    "Action": [GET_SECRET],
                    "Resource": [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:app/PRD-??????"],
                }
            ],
            lambda: sm.get_secret_value(SecretId="app/PRD"),
            "500",
        ),
    ]
    seen = {}
    for label, statements, request, _ in cases:
        document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **s} for s in statements]}
        world.admin("iam").put_role_policy(
            RoleName="reader", PolicyName="confstage", PolicyDocument=json.dumps(document)
        )
        seen[label] = _outcome(request)
    assert seen == {label: want for label, _, _, want in cases}


# -- every source and option, under enforcement ---------------------------------------------------------------


@pytest.mark.parametrize("name", BY_NAME)
def test_the_policy_suffices(world: World, reader: Reader, name: str) -> None:
    """Under the PRD policy every read of PRD succeeds, through botocore and through the lite transport alike.

    moto refuses none of the requests (actions; S3's ARNs), ``iam_allows`` none (every ARN and condition), and
    the lite transport's replay of each request gets the same answer botocore got (a missing S3 key: NoSuchKey).
    """
    case = BY_NAME[name]
    policy = case.policy(world)
    world.use(policy)
    for read in case.reads_for(world):
        outcome = reader.read(read, "PRD")
        assert outcome.error is None, (read.label, outcome.error)
        assert outcome.values == expected(read, "PRD")
        calls = outcome.calls + outcome.restart
        assert [c.error for c in calls if c.error] == (["NoSuchKey"] if "only_env" in read.keys else [])
        assert denied_by_model(world, policy, calls) == []
        assert replay(world, calls) == [c.error for c in calls]
        if read.cache_key:  # the restart opened the sealed secret with one KMS call, and asked SSM nothing
            assert [c.action for c in outcome.restart] == [DECRYPT]


@pytest.mark.parametrize("name", STAGE_BOUND)
def test_another_stage_is_denied(world: World, reader: Reader, name: str) -> None:
    """Under the PRD policy a read of DEV is refused; never answered by the next source (env:// holds db_url).

    Where moto can tell (S3's object ARNs), the read fails with ``SourceError`` naming the operation, and the lite
    transport's replay gets AccessDenied too; elsewhere moto answers, and ``iam_allows`` refuses exactly the
    requests whose ARN or condition names the stage (LeadingKeys, the parameter path, the secret, the
    ``confstage:stage`` of an envelope's data key).
    """
    case = BY_NAME[name]
    policy = case.policy(world)
    world.use(policy)
    for read in case.reads_for(world):
        by_moto, by_model = case.dev[read.label]
        outcome = reader.read(read, "DEV")
        calls = outcome.calls + outcome.restart
        assert outcome.denied() == by_moto, read.label
        if by_moto:
            assert isinstance(outcome.error, SourceError), read.label
            assert outcome.error.operation in by_moto
            assert outcome.values is None
            assert set(replay(world, calls)) & DENIED
        else:
            assert outcome.error is None, read.label
            assert outcome.values == expected(read, "DEV"), read.label
        assert {a.action for a in denied_by_model(world, policy, calls)} == by_model, read.label


@pytest.mark.parametrize("name", BY_NAME)
def test_each_statement_is_needed(world: World, reader: Reader, name: str) -> None:
    """Without any one statement, exactly the reads that need it fail, naming the refused operation.

    moto refuses what it can tell (an action no other statement grants; S3's ARNs); ``iam_allows``, run on the
    requests the full policy's reads made, finds the rest (a missing key's s3:ListBucket, a sealed secret's
    Decrypt at restart). A read that does not need the statement is unaffected, by both.
    """
    case = BY_NAME[name]
    full = case.policy(world)
    reads = case.reads_for(world)
    names = [sid_name(s["Sid"]) for s in full["Statement"]]
    assert sorted(names) == sorted([*case.removal, *case.document_only])
    world.use(full)
    baseline = {}
    for read in reads:
        outcome = reader.read(read, "PRD")
        baseline[read.label] = outcome.calls + outcome.restart
    for statement in full["Statement"]:
        reduced = without(full, statement["Sid"])
        sid = sid_name(statement["Sid"])
        world.use(reduced)
        refused = case.removal.get(sid, {})
        for read in reads:
            outcome = reader.read(read, "PRD")
            action = refused.get(read.label)
            where = (sid, read.label)
            assert outcome.denied() == ({action} if action else set()), where
            if action and action not in case.best_effort:
                assert isinstance(outcome.error, SourceError), where
                assert outcome.error.operation == action, where
            else:
                assert outcome.error is None, where
                assert outcome.values == expected(read, "PRD"), where
        needs = {read.label for read in reads if denied_by_model(world, reduced, baseline[read.label])}
        assert needs == set(refused) | case.model_only.get(sid, frozenset()), sid


@pytest.mark.parametrize("name", STAGE_BOUND)
def test_without_a_stage_every_stage_is_readable(world: World, reader: Reader, name: str) -> None:
    """``iam-policy`` without ``--stage`` lets the function read every stage: PRD and DEV both succeed."""
    case = BY_NAME[name]
    policy = case.policy(world, stage=None)
    world.use(policy)
    for read in case.reads_for(world):
        for stage in STAGES:
            outcome = reader.read(read, stage)
            assert outcome.error is None, (read.label, stage)
            assert outcome.values == expected(read, stage), (read.label, stage)
            assert denied_by_model(world, policy, outcome.calls + outcome.restart) == []


# -- the documents: what moto cannot evaluate, pinned exactly -------------------------------------------------

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CACHE_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0000abcd-12ab-34cd-56ef-1234567890ab"
EVERY_SOURCE = (
    "kms-env://",
    "dynamodb://cfg",
    "dynamodb://flat?layout=flat",
    "s3://cfg-bucket/app",
    "s3://cfg-bucket/doc?layout=document",
    "ssm:///app",
    "secretsmanager://app",
)
EVERY_OPTION = ("--secure", "--kms-key", KEY, "--function", FUNCTION, "--cache-kms-key", CACHE_KEY)
READ_ACTIONS = {
    *(QUERY, GET_ITEM, BATCH, GET_OBJECT, "s3:ListBucket", BY_PATH),
    *(GET_SECRET, BATCH_SECRETS, LIST_SECRETS, DECRYPT, DATA_KEY),
}
_WRITE = re.compile(
    r":(Put|Update|Delete|Create|BatchWrite|Write|Tag|Untag|Restore|Rotate|Encrypt|ReEncrypt|Import|Schedule|Cancel"
    r"|Disable|Enable|Replicate|Modify|Attach|Detach|Set|Add|Remove|Copy|Label|Send|Publish|Invoke|Start|Stop)"
)


def _arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


def test_the_console_script_prints_the_same_policy() -> None:
    """The installed ``confstage`` script, in a process of its own, prints what this module's in-process runs do."""
    args = iam_policy_args(EVERY_SOURCE, EVERY_OPTION, "PRD")
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == generated(EVERY_SOURCE, EVERY_OPTION, "PRD")


def test_the_documents_name_exact_arns_and_conditions_per_stage() -> None:
    """Every source and option at once, pinned: the ARNs and condition keys that moto does not evaluate.

    With ``--stage DEV`` the document is the same with DEV for PRD, so each stage's policy names that stage only:
    its LeadingKeys, its S3 folder, its parameter path, its secret (with Secrets Manager's ``-??????`` suffix)
    and the ``confstage:stage`` an envelope's data key is bound to. kms-env's Decrypt is bound to the function;
    the /tmp cache's key to its own purpose.
    """
    prd = generated(EVERY_SOURCE, EVERY_OPTION, "PRD")
    listing = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::cfg-bucket"]}
    assert prd == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDynamoDBStage1",
                "Effect": "Allow",
                "Action": [QUERY],
                "Resource": [_arn("dynamodb", "table/cfg")],
                "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["PRD"]}},
            },
            {
                "Sid": "ReadDynamoDBKeys2",
                "Effect": "Allow",
                "Action": [BATCH, GET_ITEM],
                "Resource": [_arn("dynamodb", "table/flat")],
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["*_PRD"]}},
            },
            {
                "Sid": "ReadS3Objects3",
                "Effect": "Allow",
                "Action": [GET_OBJECT],
                "Resource": ["arn:aws:s3:::cfg-bucket/app/PRD/*"],
            },
            {"Sid": "ListS3BucketForNotFound4", **listing},
            {
                "Sid": "ReadS3Objects5",
                "Effect": "Allow",
                "Action": [GET_OBJECT],
                "Resource": ["arn:aws:s3:::cfg-bucket/doc/PRD/config.json"],
            },
            {
                "Sid": "ReadSSMParameters6",
                "Effect": "Allow",
                "Action": [BY_PATH],
                "Resource": [_arn("ssm", "parameter/app/PRD"), _arn("ssm", "parameter/app/PRD/*")],
            },
            {
                "Sid": "ReadSecret7",
                "Effect": "Allow",
                "Action": [GET_SECRET],
                "Resource": [_arn("secretsmanager", "secret:app/PRD"), _arn("secretsmanager", "secret:app/PRD-??????")],
            },
            {
                "Sid": "DecryptLambdaEnvironment8",
                "Effect": "Allow",
                "Action": [DECRYPT],
                "Resource": [KEY],
                "Condition": {"StringLike": {"kms:EncryptionContext:LambdaFunctionName": FUNCTION}},
            },
            {
                "Sid": "DecryptSecureValues9",
                "Effect": "Allow",
                "Action": [DECRYPT],
                "Resource": [KEY],
                "Condition": {
                    "StringEquals": {
                        "kms:EncryptionContext:confstage:purpose": "config-value",
                        "kms:EncryptionContext:confstage:stage": ["PRD"],
                    }
                },
            },
            {
                "Sid": "DecryptViaService10",
                "Effect": "Allow",
                "Action": [DECRYPT],
                "Resource": [KEY],
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [f"secretsmanager.{REGION}.amazonaws.com", f"ssm.{REGION}.amazonaws.com"]
                    }
                },
            },
            {
                "Sid": "SealTmpCache11",
                "Effect": "Allow",
                "Action": [DECRYPT, DATA_KEY],
                "Resource": [CACHE_KEY],
                "Condition": {"StringEquals": {"kms:EncryptionContext:confstage:purpose": "tmp-cache"}},
            },
        ],
    }
    dev = generated(EVERY_SOURCE, EVERY_OPTION, "DEV")
    assert dev == json.loads(json.dumps(prd).replace("PRD", "DEV"))


@pytest.mark.parametrize("stage", ["PRD", None], ids=["stage", "every-stage"])
def test_no_policy_grants_a_write_action(stage: str | None) -> None:
    """Read actions only, never a wildcard action, Allow only; GenerateDataKey only for the /tmp cache's purpose.

    Every case's policy and the policy of every source with every option; by the JSON alone (what moto enforces
    of actions is shown by the cases themselves).
    """
    policies = [generated(EVERY_SOURCE, EVERY_OPTION, stage)]
    policies += [generated(c.sources, tuple(o.format(key=KEY, cache_key=CACHE_KEY) for o in c.options), stage)
                 for c in CASES]  # fmt: skip
    for policy in policies:
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
            for action in statement["Action"]:
                assert action in READ_ACTIONS, action
                assert not _WRITE.search(action), action
                assert "*" not in action
            if DATA_KEY in statement["Action"]:
                assert statement["Condition"]["StringEquals"]["kms:EncryptionContext:confstage:purpose"] == "tmp-cache"


def test_kms_env_decrypt_is_bound_to_the_function() -> None:
    """kms-env's Decrypt needs the context Lambda's console encrypts with: this function's name.

    By ``iam_allows`` (moto evaluates no condition): the runtime's Decrypt is refused under a policy made for
    another function, and a context-less Decrypt (kms-env's fallback for ciphertexts made without a context)
    under any: such variables need a policy of their own.
    """
    mine = Authorization(DECRYPT, KEY, {"kms:EncryptionContext:LambdaFunctionName": FUNCTION})
    bare = Authorization(DECRYPT, KEY, {})
    ours = generated(("kms-env://",), ("--kms-key", KEY, "--function", FUNCTION), "PRD")
    theirs = generated(("kms-env://",), ("--kms-key", KEY, "--function", "otherFunction"), "PRD")
    anyone = generated(("kms-env://",), ("--kms-key", KEY), "PRD")
    assert [iam_allows(p, mine) for p in (ours, theirs, anyone)] == [True, False, True]
    assert [iam_allows(p, bare) for p in (ours, theirs, anyone)] == [False, False, False]
    other_key = Authorization(DECRYPT, KEY.replace("1234abcd", "9999abcd"), mine.context)
    assert not iam_allows(ours, other_key)


def test_decrypt_via_service_is_for_ssm_and_secrets_manager_only() -> None:
    """SecureStrings and secrets under a customer key are decrypted by the service, for the caller.

    The runtime never asks KMS itself for them, and moto's SSM and Secrets Manager never call KMS, so no run
    can exercise this statement: ``iam_allows`` shows a Decrypt made through SSM or Secrets Manager allowed, and
    the same Decrypt asked directly, or through another service, refused.
    """
    policy = generated(("ssm:///app", "secretsmanager://app"), ("--kms-key", KEY), "PRD")
    (via,) = [s for s in policy["Statement"] if sid_name(s["Sid"]) == "DecryptViaService"]
    assert via["Resource"] == [KEY]
    services = [f"secretsmanager.{REGION}.amazonaws.com", f"ssm.{REGION}.amazonaws.com"]
    assert via["Condition"] == {"StringEquals": {"kms:ViaService": services}}
    parameter = {"kms:EncryptionContext:PARAMETER_ARN": _arn("ssm", "parameter/app/PRD/token")}
    for service, allowed in [("ssm", True), ("secretsmanager", True), ("lambda", False), (None, False)]:
        context = {**parameter, **({"kms:ViaService": f"{service}.{REGION}.amazonaws.com"} if service else {})}
        assert iam_allows(policy, Authorization(DECRYPT, KEY, context)) is allowed, service


def test_a_stage_without_a_secret_reads_as_not_found() -> None:
    """A stage whose secret does not exist must fall through, as a missing S3 key does (s3:ListBucket's role).

    AWS's behaviour, as reported (aws-cdk#17792: CloudTrail's AccessDenied "on resource: …:secret:NAME" for a
    secret that did not exist), which neither moto (ResourceNotFound whatever the policy) nor this module can
    measure; ``iam_allows`` shows the builder's ReadSecret covers that ARN: it names ``secret:PREFIX/STAGE``
    exactly beside the suffixed ARNs.
    """
    policy = generated(("secretsmanager://app",), (), "PRD")
    assert iam_allows(policy, Authorization(GET_SECRET, _arn("secretsmanager", "secret:app/PRD"), {}))
