"""Commands on one store: ``init put get list delete history rollback``.

``get`` reads through the whole chain, as a handler would; the others act on the store, the
first writable source of the chain (``dynamodb://``, ``s3://``, ``ssm://``, ``secretsmanager://``).
"""

from __future__ import annotations

import click

from confstage.cli.checks import valid_key
from confstage.cli.errors import UsageFailed
from confstage.cli.options import ValueCommand, global_options, settings
from confstage.cli.output import emit, emit_json, mask, message, table
from confstage.errors import KeyNotFoundError
from confstage.sources import WritableSource

from .common import chain, read_value, store

__all__ = ["COMMANDS"]


@click.command()
@global_options
def init() -> None:
    """Create what the store needs: the DynamoDB table (on-demand), the versioned S3 bucket.

    Running it again is harmless.
    """
    target = store(settings())
    target.init()
    message(f"ready: {target.url}")


@click.command(cls=ValueCommand)
@click.argument("key")
@click.argument("value", required=False)
@click.option("--file", "file", metavar="FILE", help="Read the value from a regular file ('-' for stdin).")
@click.option("--secure", is_flag=True, help="Envelope-encrypt the value (needs --kms-key).")
@click.option("--kms-key", metavar="KEY", help="KMS key id, ARN or alias/NAME for --secure.")
@click.option("--expect-version", metavar="N", help="Write only if the stored version is N ('0': must not exist).")
@global_options
def put(
    key: str, value: str | None, file: str | None, secure: bool, kms_key: str | None, expect_version: str | None
) -> None:
    """Write KEY = VALUE (or the content of --file, or stdin, losing one trailing newline)."""
    if secure and not kms_key:
        raise click.UsageError("--secure needs --kms-key KEY")
    if kms_key and not secure:
        raise click.UsageError("--kms-key is only used with --secure")
    valid_key(key)
    options = settings()
    stage = options.require_stage()
    target = store(options)
    text = read_value(value, file, what=f"value of {key}", secret=secure)
    refused = target.check_write(stage, {key: text})
    if refused:
        raise UsageFailed(f"{target.url} cannot take KEY and its value: {refused[key]}")
    version = target.put(stage, key, text, kms_key=kms_key if secure else None, expect_version=expect_version)
    what = "secure value" if secure else "value"
    suffix = f" (version {version})" if version else ""
    message(f"wrote {what} of {key!r} for stage {stage} to {target.url}{suffix}")


@click.command()
@click.argument("key")
@click.option("--reveal", is_flag=True, help="Print a secure value in plaintext.")
@global_options
def get(key: str, reveal: bool) -> None:
    """Print the value of KEY, read through the sources in order (secure values masked)."""
    valid_key(key)
    options = settings()
    stage = options.require_stage()
    sources = chain(options)
    for source in sources:
        fetched = source.fetch(stage, [key])
        if key in fetched:
            secure = key in fetched.secret
            shown = mask(fetched[key], secure, reveal)
            if options.json:
                emit_json({"key": key, "value": shown, "secure": secure, "stage": stage, "source": source.url})
            else:
                emit(shown)
            return
    raise KeyNotFoundError(key, stage, [source.url for source in sources])


@click.command(name="list")
@click.option("--reveal", is_flag=True, help="Show secure values in plaintext.")
@global_options
def list_(reveal: bool) -> None:
    """List the keys of a stage in the store (secure values masked)."""
    options = settings()
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


@click.command()
@click.argument("key")
@global_options
def delete(key: str) -> None:
    """Remove KEY from the stage; exit 1 when it did not exist."""
    valid_key(key)
    options = settings()
    stage = options.require_stage()
    target = store(options)
    if not target.delete(stage, key):
        raise KeyNotFoundError(key, stage, [target.url])
    message(f"deleted {key!r} from stage {stage} in {target.url}")


@click.command()
@click.argument("key")
@global_options
def history(key: str) -> None:
    """List the stored versions of KEY, newest first."""
    valid_key(key)
    options = settings()
    stage = options.require_stage()
    target = store(options)
    versions = target.history(stage, key)
    if not versions:
        raise KeyNotFoundError(key, stage, [target.url])
    if options.json:
        emit_json(
            [
                {
                    "version": v.version,
                    "modified": v.modified.isoformat() if v.modified else None,
                    "latest": v.latest,
                    "secure": v.secure,
                }
                for v in versions
            ]
        )
        return
    rows = [
        (v.version, v.modified.isoformat(timespec="seconds") if v.modified else "", "yes" if v.latest else "")
        for v in versions
    ]
    table(("version", "modified", "latest"), rows, title=f"{key} — stage {stage} in {target.url}")


@click.command()
@click.argument("key")
@click.option("--to", "version", required=True, metavar="VERSION", help="The version to restore (see history).")
@global_options
def rollback(key: str, version: str) -> None:
    """Make VERSION the current value of KEY again (as a new version)."""
    valid_key(key)
    options = settings()
    stage = options.require_stage()
    target: WritableSource = store(options)
    new = target.rollback(stage, key, version)
    suffix = f" as version {new}" if new and new != version else ""
    message(f"restored {key!r} of stage {stage} to version {version}{suffix} in {target.url}")


COMMANDS: list[click.Command] = [init, put, get, list_, delete, history, rollback]
