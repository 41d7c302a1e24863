"""Commands that need no store: ``encrypt iam-policy resolve``."""

from __future__ import annotations

import os

import click

from confstage.cli.errors import Failed
from confstage.cli.iam import Account, build_policy
from confstage.cli.inputs import valid_stage
from confstage.cli.lambda_kms import encrypt_for_lambda
from confstage.cli.options import ConfstageCommand, Settings, ValueCommand
from confstage.cli.output import emit, emit_json
from confstage.errors import StageError
from confstage.stage import parse_aliases, parse_arn

from .common import read_value

__all__ = ["COMMANDS"]

_MAX_PLAINTEXT = 4096  # bytes KMS Encrypt takes


@click.command(cls=ValueCommand)
@click.argument("value", required=False)
@click.option("--kms-key", required=True, metavar="KEY", help="KMS key id, ARN or alias/NAME.")
@click.option("--function", "function", required=True, metavar="NAME", help="The Lambda function's name.")
@click.pass_obj
def encrypt(options: Settings, value: str | None, kms_key: str, function: str) -> None:
    """Print the ciphertext of VALUE (or stdin) for a kms-env:// variable, as the Lambda console makes it."""
    plaintext = read_value(value, None, what="value to encrypt", secret=True)
    size = len(plaintext.encode("utf-8", "surrogatepass"))
    if not 0 < size <= _MAX_PLAINTEXT:
        raise Failed(f"the value to encrypt is {size} bytes; KMS encrypts 1 to {_MAX_PLAINTEXT}")
    ciphertext = encrypt_for_lambda(plaintext, kms_key=kms_key, function=function, transport=options.transport())
    if options.json:
        emit_json({"ciphertext": ciphertext, "kms_key": kms_key, "function": function})
    else:
        emit(ciphertext)


@click.command(cls=ConfstageCommand, name="iam-policy")
@click.option("--account", metavar="ID", help="Account id in ARNs (default ${AWS::AccountId}).")
@click.option("--partition", metavar="NAME", help="Partition in ARNs (default: from --region, else ${AWS::Partition}).")
@click.option("--kms-key", "kms_keys", multiple=True, metavar="KEY", help="Key that encrypts values (repeatable).")
@click.option("--secure", is_flag=True, help="The stores hold secure values: allow kms:Decrypt for them.")
@click.option("--function", metavar="NAME", help="Function name for the kms-env:// encryption-context condition.")
@click.option(
    "--cache-kms-key",
    metavar="KEY",
    envvar="CONFSTAGE_CACHE_KMS_KEY",
    help="Key that seals secrets in the /tmp cache (default $CONFSTAGE_CACHE_KMS_KEY).",
)
@click.option(
    "--fallback-regions",
    metavar="REGIONS",
    envvar="CONFSTAGE_FALLBACK_REGIONS",
    callback=lambda ctx, param, value: _regions(ctx, param, value),
    help="Regions the sources fail over to, comma-separated (default $CONFSTAGE_FALLBACK_REGIONS); "
    "a URL's own ?fallback_regions= wins.",
)
@click.pass_obj
def iam_policy(
    options: Settings,
    account: str | None,
    partition: str | None,
    kms_keys: tuple[str, ...],
    secure: bool,
    function: str | None,
    cache_kms_key: str | None,
    fallback_regions: tuple[str, ...] | None,
) -> None:
    """Print the least-privilege IAM policy (JSON) the configured sources need at runtime.

    ARNs use ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId} (ready for Fn::Sub) unless
    --partition, --region and --account are given. --stage narrows every statement to one stage.
    """
    if not options.explicit_urls:
        raise click.UsageError("name the sources: --source URL (repeatable) or CONFSTAGE_SOURCES")
    defaults = Account()
    region = options.option("region") or defaults.region
    where = Account(
        partition=partition or _partition_of(region) or defaults.partition,
        region=region,
        account=account or defaults.account,
    )
    stage = options.option("stage")
    stages = (valid_stage(stage, what="--stage"),) if stage is not None else ()
    emit_json(
        build_policy(
            options.urls,
            account=where,
            stages=stages,
            kms_keys=kms_keys,
            secure=secure,
            function=function,
            cache_kms_key=cache_kms_key,
            fallback_regions=fallback_regions,
        )
    )


def _regions(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    """``--fallback-regions`` (or its variable): the names in order, None when neither is set; a usage error naming
    the first that is not a region, and where it was given."""
    from confstage.errors import ConfigurationError
    from confstage.sources.failover import check_regions

    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    from_variable = ctx.get_parameter_source(param.name or "") is click.core.ParameterSource.ENVIRONMENT
    where = "CONFSTAGE_FALLBACK_REGIONS" if from_variable else "--fallback-regions"
    try:
        return check_regions(names, what=where)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc).removeprefix(f"{where}: "), param_hint=where) from None


def _partition_of(region: str) -> str | None:
    """The partition a literal region belongs to (None for a placeholder)."""
    from confstage.transport.endpoints import partition

    return None if region.startswith("${") else partition(region).name


@click.command(cls=ConfstageCommand)
@click.argument("arn")
@click.option("--aliases", metavar="ALIAS=STAGE,…", help="Alias map (default $CONFSTAGE_ALIASES).")
@click.pass_obj
def resolve(options: Settings, arn: str, aliases: str | None) -> None:
    """Print the stage a Lambda function ARN maps to (alias → stage map, else --stage/CONFSTAGE_STAGE)."""
    mapping = parse_aliases(aliases if aliases is not None else os.environ.get("CONFSTAGE_ALIASES"))
    try:
        parts = parse_arn(arn)
    except StageError as exc:
        raise click.BadParameter(str(exc), param_hint="ARN") from None
    alias = parts.alias
    if alias is not None:
        stage, via = mapping.get(alias, alias), ("alias map" if alias in mapping else "alias")
    else:
        via = options.stage_origin
        stage = options.stage or ""
        if stage or "stage" in options.given:
            valid_stage(stage, what=via)
        if not stage:
            raise Failed(
                f"{arn} carries no alias (qualifier {parts.qualifier!r}) and no --stage/CONFSTAGE_STAGE is set"
            )
    if options.json:
        emit_json({**parts._asdict(), "alias": alias, "stage": stage, "via": via})
    else:
        emit(stage)


COMMANDS: list[click.Command] = [encrypt, iam_policy, resolve]
