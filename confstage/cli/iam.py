"""The least-privilege IAM policy a function needs at runtime to read its configured sources.

One statement per source (two for Secrets Manager's secrets layout), naming exact resources:

==========================  ======================================================  =============================
source                      actions                                                 resource
==========================  ======================================================  =============================
``env://``                  —                                                       —
``kms-env://``              ``kms:Decrypt``, encryption context                     the ``--kms-key`` keys, else
                            ``LambdaFunctionName`` = ``--function`` (any when       ``key/*`` of the account
                            not given) required
``dynamodb://T``            ``dynamodb:Query`` (stage-key) or ``dynamodb:GetItem``  ``table/T``
                            + ``dynamodb:BatchGetItem`` (flat); with ``--stage``
                            a ``dynamodb:LeadingKeys`` condition
``s3://B/P``                ``s3:GetObject``                                        ``B/P/*`` (``B/P/STAGE/…``)
                            ``s3:ListBucket`` (missing keys read as 404, not 403)   bucket ``B``
``ssm:///P``                ``ssm:GetParametersByPath``                             ``parameter/P/*`` (``/P/STAGE``)
``secretsmanager://P``      ``secretsmanager:GetSecretValue``                       ``secret:P/*`` (``P/STAGE-??????``;
                            ``layout=secrets`` adds a statement of                  ``P/STAGE/*`` in the secrets
                            ``secretsmanager:BatchGetSecretValue`` and              layout); its second statement
                            ``secretsmanager:ListSecrets``                          ``*`` (no resource type)
``appconfig://A/P``          ``appconfig:StartConfigurationSession``,                ``application/A/environment/E/
                            ``appconfig:GetLatestConfiguration`` (the extension     configuration/P``, E from the
                            calls them with the function's role too)                template per ``--stage``
secure values (``--secure`` ``kms:Decrypt`` bound by encryption context            the ``--kms-key`` keys, else
or ``--kms-key``)           (``confstage:purpose``, ``confstage:stage``) for the    ``key/*`` of the account
                            envelope stores, by ``kms:ViaService`` for SSM and
                            Secrets Manager
/tmp cache sealing          ``kms:GenerateDataKey`` + ``kms:Decrypt``, context      the ``--cache-kms-key`` key
(``--cache-kms-key``)       ``confstage:purpose`` = ``tmp-cache``
==========================  ======================================================  =============================

Fallback regions (``?fallback_regions=`` on a URL, else ``CONFSTAGE_FALLBACK_REGIONS``; ``confstage.sources.failover``):
every regional ARN of the source's statements is granted in each fallback region too, an S3 bucket named with
``{region}`` is granted in its home region and each fallback's, and the KMS statements cover the keys and
``kms:ViaService`` endpoints of those regions.

ARNs use CloudFormation pseudo parameters (``${AWS::Partition}``, ``${AWS::Region}``,
``${AWS::AccountId}``) unless ``partition``/``region``/``account`` are given, so the output can
be pasted into a template's ``Fn::Sub`` as it is, or made literal for ``aws iam create-policy``.
AppConfig authorises against IDs (``abc1234``), not names: an identifier of the URL (or an environment the template
makes of a stage) that is not an ID is ``*`` in its ARN, so the policy works, and is as tight as the IDs it names.
No DynamoDB or S3 statement ever has ``"Resource": "*"``. The secrets layout's one does, as AWS requires: it
grants listing secrets' names and metadata; every value still needs GetSecretValue on its own ARN.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from confstage.errors import ConfigurationError
from confstage.sources import SourceURL

__all__ = ["Account", "build_policy"]

_APPCONFIG_ID = re.compile(r"[a-z0-9]{7}")  # what AppConfig's application, environment and profile ids look like
_KEY_ID = re.compile(r"(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32}")
_ARN_FIELDS = re.compile(r":(?![^{]*\})")  # a colon between ARN fields, not one inside a ${AWS::...} placeholder


@dataclass(frozen=True)
class Account:
    """Where the resources live; placeholders unless given."""

    partition: str = "${AWS::Partition}"
    region: str = "${AWS::Region}"
    account: str = "${AWS::AccountId}"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        if service == "s3":
            return f"arn:{self.partition}:s3:::{resource}"
        return f"arn:{self.partition}:{service}:{self.region if regional else ''}:{self.account}:{resource}"


@dataclass
class _Builder:
    account: Account
    stages: tuple[str, ...]
    kms_keys: tuple[str, ...]
    secure: bool
    function: str | None
    statements: list[dict[str, Any]] = field(default_factory=list)
    envelope: bool = False  # a dynamodb:// or s3:// source may hold secure values
    batch_secrets: bool = False  # a secretsmanager:// source of the secrets layout: its "*" statement is made
    via: set[str] = field(default_factory=set)  # services that decrypt on our behalf (ssm, secretsmanager)
    reads_kms_env: bool = False
    regions: list[str] = field(default_factory=list)  # every source's fallback regions, in order (KMS covers them)

    def fallbacks(self, first: int, regions: Sequence[str]) -> None:
        """Grant the statements from index ``first`` on in ``regions`` too: each regional ARN once per region."""
        for statement in self.statements[first:]:
            resources = statement["Resource"]
            statement["Resource"] = [*resources, *self.in_regions(resources, regions)]
        self.regions.extend(region for region in regions if region not in self.regions)

    def in_regions(self, arns: Sequence[str], regions: Sequence[str]) -> list[str]:
        """The regional ``arns`` (those in the home region) as they are named in each of ``regions``."""
        copies: list[str] = []
        for arn in arns:
            parts = _ARN_FIELDS.split(arn, 5)  # ${AWS::Region} and its kind are one field each, colons and all
            if len(parts) == 6 and parts[3] == self.account.region:
                copies.extend(":".join([*parts[:3], region, *parts[4:]]) for region in regions)
        return [arn for arn in copies if arn not in arns]

    def add(self, sid: str, actions: list[str], resources: list[str], condition: dict[str, Any] | None = None) -> None:
        statement: dict[str, Any] = {
            "Sid": f"{sid}{len(self.statements) + 1}",
            "Effect": "Allow",
            "Action": actions,
            "Resource": resources,
        }
        if condition:
            statement["Condition"] = condition
        self.statements.append(statement)

    # -- one method per scheme -------------------------------------------------------------

    def dynamodb(self, url: SourceURL) -> None:
        table = url.netloc
        if not table:
            raise url.error("expected dynamodb://TABLE")
        layout = url.take_choice("layout", ("stage-key", "flat"))
        url.take("consistent")
        arn = self.account.arn("dynamodb", f"table/{table}")
        if layout == "stage-key":
            condition = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": list(self.stages)}}
            self.add("ReadDynamoDBStage", ["dynamodb:Query"], [arn], condition if self.stages else None)
        else:
            condition = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"*_{s}" for s in self.stages]}}
            self.add(
                "ReadDynamoDBKeys",
                ["dynamodb:BatchGetItem", "dynamodb:GetItem"],
                [arn],
                condition if self.stages else None,
            )
        self.envelope = True

    def s3(self, url: SourceURL) -> None:
        bucket = url.netloc
        if not bucket:
            raise url.error("expected s3://BUCKET[/PREFIX]")
        prefix = url.path.strip("/")
        layout = url.take_choice("layout", ("objects", "document"))
        base = f"{prefix}/" if prefix else ""
        heads = [f"{base}{stage}/" for stage in self.stages] or [base]
        name = "config.json" if layout == "document" else "*"
        if layout == "document" and not self.stages:
            objects = [self.account.arn("s3", f"{bucket}/{base}*/config.json")]
        else:
            objects = [self.account.arn("s3", f"{bucket}/{head}{name}") for head in heads]
        self.add("ReadS3Objects", ["s3:GetObject"], objects)
        # Without s3:ListBucket, S3 answers a missing object with 403, which the source must treat
        # as an error, so the chain would not fall through to the next source. S3 decides 404 vs
        # 403 for a GetObject, which carries no s3:prefix, so a prefix-conditioned grant would not
        # help: the grant is the exact bucket, unconditioned (it reveals key names, never values).
        listing = next((s for s in self.statements if s["Sid"].startswith("ListS3BucketForNotFound")), None)
        if listing is None:
            self.add("ListS3BucketForNotFound", ["s3:ListBucket"], [self.account.arn("s3", bucket)])
        elif self.account.arn("s3", bucket) not in listing["Resource"]:
            listing["Resource"].append(self.account.arn("s3", bucket))  # one statement: policies have a size limit
        self.envelope = True

    def ssm(self, url: SourceURL) -> None:
        path = f"{url.netloc}/{url.path.strip('/')}" if url.netloc else url.path
        path = path.strip("/")
        url.take("recursive")
        base = f"parameter/{path}" if path else "parameter"
        if self.stages:
            resources = [self.account.arn("ssm", f"{base}/{s}{tail}") for s in self.stages for tail in ("", "/*")]
        else:
            resources = [self.account.arn("ssm", f"{base}/*")]
        self.add("ReadSSMParameters", ["ssm:GetParametersByPath"], resources)
        self.via.add("ssm")

    def secretsmanager(self, url: SourceURL) -> None:
        prefix = f"{url.netloc}/{url.path.strip('/')}".strip("/") if url.netloc else url.path.strip("/")
        if not prefix:
            raise url.error("expected secretsmanager://PREFIX")
        self.via.add("secretsmanager")
        if url.take_choice("layout", ("document", "secrets")) == "secrets":
            heads = [f"{prefix}/{stage}/" for stage in self.stages] or [f"{prefix}/"]
            self.add("ReadSecrets", ["secretsmanager:GetSecretValue"], [self._secret(f"{h}*") for h in heads])
            if not self.batch_secrets:
                # BatchGetSecretValue and ListSecrets have no resource type in AWS's Secrets Manager permissions
                # reference (docs.aws.amazon.com/secretsmanager/latest/userguide/reference_iam-permissions.html):
                # a statement naming secret ARNs never allows them, only "*" does. The API reference of
                # BatchGetSecretValue: "you must have secretsmanager:GetSecretValue for each secret. If you use
                # filters, you must also have secretsmanager:ListSecrets." So values stay behind the statement
                # above; this one lets the call list names and metadata, and return each secret it allows.
                self.batch_secrets = True
                self.add(
                    "BatchReadSecrets", ["secretsmanager:BatchGetSecretValue", "secretsmanager:ListSecrets"], ["*"]
                )
            return
        # A secret's ARN ends in six random characters; a secret that does not exist is authorised against
        # its name alone, and must be readable too, so that a stage without one answers "not found".
        if self.stages:
            names = [f"{prefix}/{s}{tail}" for s in self.stages for tail in ("", "-??????")]
        else:
            names = [f"{prefix}/*"]
        self.add("ReadSecret", ["secretsmanager:GetSecretValue"], [self._secret(name) for name in names])

    def appconfig(self, url: SourceURL) -> None:
        application, profile = url.netloc, url.path.strip("/")
        if not application or not profile or "/" in profile:
            raise url.error("expected appconfig://APPLICATION/PROFILE")
        template = url.take("environment", "{stage}") or "{stage}"
        for name in ("via", "poll_interval"):
            url.take(name)
        environments = sorted(
            {template.replace("{STAGE}", stage).replace("{stage}", stage.lower()) for stage in self.stages}
        ) or ["*"]
        resources = [
            self.account.arn(
                "appconfig",
                f"application/{_appconfig_id(application)}/environment/{_appconfig_id(environment)}"
                f"/configuration/{_appconfig_id(profile)}",
            )
            for environment in environments
        ]
        self.add(
            "ReadAppConfig",
            ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"],
            sorted(set(resources)),
        )

    def _secret(self, pattern: str) -> str:
        return self.account.arn("secretsmanager", f"secret:{pattern}")

    def kms_env(self, url: SourceURL) -> None:
        for name in ("keys", "template", "fallback"):
            url.take(name)
        self.reads_kms_env = True

    # -- KMS -------------------------------------------------------------------------------

    def keys(self, keys: Sequence[str] | None = None) -> tuple[list[str], dict[str, Any]]:
        """Key ARNs to name, and the alias condition when keys were named by alias."""
        arns: list[str] = []
        aliases: list[str] = []
        for key in self.kms_keys if keys is None else keys:
            if key.startswith("arn:"):
                arns.append(key)
            elif key.startswith("alias/"):
                aliases.append(key)
            elif _KEY_ID.fullmatch(key):
                arns.append(self.account.arn("kms", f"key/{key}"))
            else:
                raise ConfigurationError(f"--kms-key {key!r} is not a key id, key ARN or alias/NAME")
        if aliases or not arns:
            # IAM authorises kms:Decrypt against the key, not its alias: match any key of the
            # account, narrowed by alias (when named) and by the conditions of each statement.
            arns.append(self.account.arn("kms", "key/*"))
        condition = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": aliases}} if aliases else {}
        return arns, condition

    def kms(self) -> None:
        if not (self.reads_kms_env or ((self.secure or self.kms_keys) and (self.envelope or self.via))):
            return
        arns, alias_condition = self.keys()
        arns = [*arns, *self.in_regions(arns, self.regions)]  # a multi-Region key's replicas decrypt there
        if self.reads_kms_env:
            context = {"kms:EncryptionContext:LambdaFunctionName": self.function or "*"}
            self.add(
                "DecryptLambdaEnvironment",
                ["kms:Decrypt"],
                arns,
                {**alias_condition, "StringLike": context},
            )
        if not (self.secure or self.kms_keys):
            return
        if self.envelope:
            equals: dict[str, Any] = {"kms:EncryptionContext:confstage:purpose": "config-value"}
            if self.stages:
                equals["kms:EncryptionContext:confstage:stage"] = list(self.stages)
            self.add("DecryptSecureValues", ["kms:Decrypt"], arns, {**alias_condition, "StringEquals": equals})
        if self.via:
            services = [
                f"{service}.{region}.amazonaws.com"
                for region in (self.account.region, *self.regions)
                for service in sorted(self.via)
            ]
            self.add(
                "DecryptViaService",
                ["kms:Decrypt"],
                arns,
                {**alias_condition, "StringEquals": {"kms:ViaService": services}},
            )

    def cache_key(self, key: str) -> None:
        """The /tmp cache's sealing key: a data key made and unwrapped under its own encryption context."""
        arns, alias_condition = self.keys((key,))
        self.add(
            "SealTmpCache",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            arns,
            {**alias_condition, "StringEquals": {"kms:EncryptionContext:confstage:purpose": "tmp-cache"}},
        )


def _appconfig_id(identifier: str) -> str:
    """An AppConfig identifier as an ARN names it: an id as it is, a name (IAM matches ids only) as ``*``."""
    return identifier if identifier == "*" or _APPCONFIG_ID.fullmatch(identifier) else "*"


def build_policy(
    urls: Sequence[str],
    *,
    account: Account | None = None,
    stages: Sequence[str] = (),
    kms_keys: Sequence[str] = (),
    secure: bool = False,
    function: str | None = None,
    cache_kms_key: str | None = None,
    fallback_regions: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The IAM policy document for reading ``urls`` (optionally only ``stages``), and for sealing
    secrets in the /tmp cache when ``cache_kms_key`` (``CONFSTAGE_CACHE_KMS_KEY``) is given.

    ``fallback_regions``: where every AWS source fails over to (None: ``CONFSTAGE_FALLBACK_REGIONS``); a URL's
    own ``?fallback_regions=`` wins."""
    from confstage.sources.failover import PLACEHOLDER, REGIONAL_SCHEMES, check_regions
    from confstage.variables import fallback_regions as configured

    account = account or Account()
    everywhere = check_regions(
        configured() if fallback_regions is None else fallback_regions,
        what="CONFSTAGE_FALLBACK_REGIONS" if fallback_regions is None else "the fallback regions",
        home=account.region,
    )
    builder = _Builder(account, tuple(stages), tuple(kms_keys), secure, function)
    handlers = {
        "dynamodb": builder.dynamodb,
        "s3": builder.s3,
        "ssm": builder.ssm,
        "secretsmanager": builder.secretsmanager,
        "kms-env": builder.kms_env,
        "appconfig": builder.appconfig,
    }
    for raw in urls:
        url = SourceURL(raw)
        url.take("ttl")
        if url.scheme in ("env", "file"):  # no AWS call: nothing to allow
            continue
        handler = handlers.get(url.scheme)
        if handler is None:
            raise url.error(f"iam-policy does not know the scheme {url.scheme!r}")
        own = url.take_list("fallback_regions") if url.scheme in REGIONAL_SCHEMES else None
        regions = (
            everywhere
            if own is None
            else check_regions(own, what=f"fallback_regions of {url.url}", home=account.region)
        )
        regions = tuple(region for region in regions if region != builder.account.region)
        first = len(builder.statements)
        if url.scheme == "s3" and PLACEHOLDER in url.netloc:
            for region in (builder.account.region, *regions):  # a bucket per region: each granted by name
                handler(SourceURL(url.url.replace(PLACEHOLDER, region, 1)))
        else:
            handler(url)
        builder.fallbacks(first, regions)
    builder.kms()
    if cache_kms_key:
        builder.cache_key(cache_kms_key)
    return {"Version": "2012-10-17", "Statement": builder.statements}
