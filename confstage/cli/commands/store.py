"""Commands on one store: ``init put get list delete history rollback``.

``get`` reads through the whole chain, as a handler would (a ``Config`` without the /tmp cache); the others
act on the store of the first source of the chain that has one (``dynamodb://``, ``s3://``, ``ssm://``,
``secretsmanager://``).
"""

from __future__ import annotations

import click

from confstage.cli.checks import valid_key
from confstage.cli.errors import UsageFailed
from confstage.cli.options import ConfstageCommand, Settings, ValueCommand
from confstage.cli.output import emit, emit_json, mask, message, report, table
from confstage.errors import KeyNotFoundError

from .common import client, keyed, read_value, store

__all__ = ["COMMANDS"]


@click.command(cls=ConfstageCommand)
@click.pass_obj
def init(options: Settings) -> None:
    """Create what the store needs: the DynamoDB table (on-demand), the versioned S3 bucket.

    Running it again is harmless.
    """
    target = store(options)
    target.init()
    report(options.json, {"action": "init", "store": target.url}, f"ready: {target.url}")


@click.command(cls=ValueCommand)
@click.argument("key")
@click.argument("value", required=False)
@click.option("--file", "file", metavar="FILE", help="Read the value from a regular file ('-' for stdin).")
@click.option("--secure", is_flag=True, help="Envelope-encrypt the value (needs --kms-key).")
@click.option("--kms-key", metavar="KEY", help="KMS key id, ARN or alias/NAME for --secure.")
@click.option("--expect-version", metavar="N", help="Write only if the stored version is N ('0': must not exist).")
@click.pass_obj
def put(
    options: Settings,
    key: str,
    value: str | None,
    file: str | None,
    secure: bool,
    kms_key: str | None,
    expect_version: str | None,
) -> None:
    """Write KEY = VALUE (or the content of --file, or stdin, losing one trailing newline)."""
    if secure and not kms_key:
        raise click.UsageError("--secure needs --kms-key KEY")
    if kms_key and not secure:
        raise click.UsageError("--kms-key is only used with --secure")
    stage, target = keyed(options, key)
    text = read_value(value, file, what=f"value of {key}", secret=secure)
    refused = target.check_write(stage, {key: text})
    if refused:
        raise UsageFailed(f"{target.url} cannot take KEY and its value: {refused[key]}")
    version = target.put(stage, key, text, kms_key=kms_key if secure else None, expect_version=expect_version)
    what = "secure value" if secure else "value"
    suffix = f" (version {version})" if version else ""
    report(
        options.json,
        {"action": "put", "key": key, "stage": stage, "store": target.url, "secure": secure, "version": version},
        f"wrote {what} of {key!r} for stage {stage} to {target.url}{suffix}",
    )


@click.command(cls=ConfstageCommand)
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Print a secret in plaintext.")
@click.pass_obj
def get(options: Settings, key: str, reveal: bool) -> None:
    """Print the value of KEY, read through the sources in order (secrets masked)."""
    valid_key(key)
    stage = options.require_stage()
    found = client(options, stage).find(key)
    shown = mask(found.value, found.secret, reveal)
    if options.json:
        emit_json({"key": key, "value": shown, "secret": found.secret, "stage": stage, "source": found.source})
    else:
        emit(shown)


@click.command(cls=ConfstageCommand, name="list")
@click.option("--reveal", is_flag=True, help="Show secure values in plaintext.")
@click.pass_obj
def list_(options: Settings, reveal: bool) -> None:
    """List the keys of a stage in the store (secure values masked)."""
    stage = options.require_stage()
    target = store(options)
    stored = target.items(stage, decrypt=reveal)
    if options.json:
        emit_json({key: mask(item.value, item.secure, reveal) for key, item in sorted(stored.items())})
        return
    rows = [
        (key, mask(item.value, item.secure, reveal), "yes" if item.secure else "", item.version or "")
        for key, item in sorted(stored.items())
    ]
    table(("key", "value", "secure", "version"), rows, title=f"{target.url} — stage {stage}")
    if not rows:
        message(f"stage {stage} has no keys in {target.url}")


@click.command(cls=ConfstageCommand)
@click.argument("key")
@click.pass_obj
def delete(options: Settings, key: str) -> None:
    """Remove KEY from the stage; exit 1 when it did not exist."""
    stage, target = keyed(options, key)
    if not target.delete(stage, key):
        raise KeyNotFoundError(key, stage, [target.url])
    report(
        options.json,
        {"action": "delete", "key": key, "stage": stage, "store": target.url},
        f"deleted {key!r} from stage {stage} in {target.url}",
    )


@click.command(cls=ConfstageCommand)
@click.argument("key")
@click.pass_obj
def history(options: Settings, key: str) -> None:
    """List the stored versions of KEY, newest first, with when and by whom each was written (where known)."""
    stage, target = keyed(options, key)
    versions = target.history(stage, key)
    if not versions:
        raise KeyNotFoundError(key, stage, [target.url])
    if options.json:
        emit_json([{**v._asdict(), "modified": v.modified.isoformat() if v.modified else None} for v in versions])
        return
    rows = [
        (
            v.version,
            v.modified.isoformat(timespec="seconds") if v.modified else "",
            "yes" if v.latest else "",
            v.by or "unknown",
        )
        for v in versions
    ]
    table(("version", "modified", "latest", "by"), rows, title=f"{key} — stage {stage} in {target.url}")
    unknown = sorted({v.by_unknown for v in versions if v.by is None and v.by_unknown})
    for why in unknown:
        message(f"by unknown: {why}")


@click.command(cls=ConfstageCommand)
@click.argument("key")
@click.option("--to", "version", required=True, metavar="VERSION", help="The version to restore (see history).")
@click.pass_obj
def rollback(options: Settings, key: str, version: str) -> None:
    """Make VERSION the current value of KEY again (as a new version)."""
    stage, target = keyed(options, key)
    new = target.rollback(stage, key, version)
    suffix = f" as version {new}" if new and new != version else ""
    report(
        options.json,
        {"action": "rollback", "key": key, "stage": stage, "store": target.url, "restored": version, "version": new},
        f"restored {key!r} of stage {stage} to version {version}{suffix} in {target.url}",
    )


COMMANDS: list[click.Command] = [init, put, get, list_, delete, history, rollback]
