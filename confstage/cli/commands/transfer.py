"""Moving values in bulk: ``import export diff promote``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from confstage.cli.checks import decode, read_input, valid_key, valid_stage
from confstage.cli.dotenv import DotenvError, Entry, format_dotenv, load_entries
from confstage.cli.errors import Failed, UsageFailed
from confstage.cli.options import global_options, settings
from confstage.cli.output import MASK, emit_json, message, progress, table
from confstage.sources import StoredValue

from .common import store, writing

__all__ = ["COMMANDS", "compare"]


@click.command(name="import")
@click.argument("file", metavar="FILE")
@click.option("--secure", is_flag=True, help="Envelope-encrypt every imported value (needs --kms-key).")
@click.option("--kms-key", metavar="KEY", help="KMS key for --secure.")
@click.option("--dry-run", is_flag=True, help="Show what would be written, write nothing.")
@global_options
def import_(file: str, secure: bool, kms_key: str | None, dry_run: bool) -> None:
    """Write every value of FILE (.env or a JSON object; '-' for stdin) to the stage.

    The whole file is read and checked, and every secure value encrypted, before the first write;
    when the store fails midway, the keys written and not written are listed.
    """
    if secure != bool(kms_key):
        raise click.UsageError("--secure and --kms-key go together")
    options = settings()
    stage = options.require_stage()
    name = "<stdin>" if file == "-" else file
    try:
        entries = load_entries(decode(read_input(file, what="FILE"), what=name), name=name)
    except DotenvError as exc:
        raise Failed(f"{exc}; nothing written") from None
    if not entries:
        raise Failed(f"{name} holds no values: nothing to import")
    values = {key: entry.value for key, entry in entries.items()}
    target = store(options)
    refused = target.check_write(stage, values)
    if refused:
        raise Failed(_refused_lines(refused, entries, name=name, url=target.url))
    if dry_run:
        current = target.items(stage)
        for key in values:
            change = "change" if key in current else "add"
            message(f"would {change} {key}")
        message(f"dry run: {len(values)} value(s) for stage {stage} in {target.url}; nothing written")
        return
    with writing(f"import into stage {stage} of {target.url}"), progress(f"importing into {stage}", len(values)) as bar:
        target.put_many(stage, values, kms_key=kms_key if secure else None, progress=bar.advance)
    message(f"imported {len(values)} value(s) into stage {stage} of {target.url}")


def _refused_lines(refused: Mapping[str, str], entries: Mapping[str, Entry], *, name: str, url: str) -> str:
    """One line for the store's refusal of a file's keys: the first by line, and the lines of the rest."""
    ordered = sorted(refused, key=lambda key: (entries[key].line, entries[key].column))
    first = entries[ordered[0]]
    text = f"{name}, line {first.line}, column {first.column}: {url} cannot take this entry: {refused[ordered[0]]}"
    if len(ordered) > 1:
        more = ", ".join(str(entries[key].line) for key in ordered[1:11])
        text += f"; {len(ordered) - 1} more on line(s) {more}{', …' if len(ordered) > 11 else ''}"
    return text + "; nothing written"


@click.command()
@click.option("--format", "format_", type=click.Choice(["dotenv", "json"]), default="dotenv", show_default=True)
@click.option("--reveal", is_flag=True, help="Include secure values in plaintext (left out otherwise).")
@global_options
def export(format_: str, reveal: bool) -> None:
    """Print every value of the stage as .env or a JSON object (secure values left out unless --reveal)."""
    options = settings()
    stage = options.require_stage()
    target = store(options)
    stored = target.items(stage, decrypt=reveal)
    values = {key: item.value for key, item in sorted(stored.items()) if reveal or not item.secure}
    withheld = sorted(key for key, item in stored.items() if item.secure and not reveal)
    if format_ == "json" or options.json:
        emit_json(values)
    else:
        click.echo(format_dotenv(values), nl=False)
    if withheld:
        message(f"left out {len(withheld)} secure value(s) ({', '.join(withheld)}); --reveal includes them")


def compare(a: Mapping[str, StoredValue], b: Mapping[str, StoredValue]) -> dict[str, Any]:
    """Keys added in ``b``, removed from ``a``, changed between them, and how many are unchanged."""
    added = sorted(b.keys() - a.keys())
    removed = sorted(a.keys() - b.keys())
    changed = sorted(k for k in a.keys() & b.keys() if a[k].value != b[k].value)
    unchanged = len(a.keys() & b.keys()) - len(changed)
    return {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}


def _shown(item: StoredValue) -> str:
    return MASK if item.secure else item.value


@click.command()
@click.argument("stage_a")
@click.argument("stage_b")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the stages differ (like git diff --exit-code).")
@global_options
def diff(stage_a: str, stage_b: str, exit_code: bool) -> None:
    """Compare two stages: keys added in STAGE_B, removed from STAGE_A, changed (secure values never shown)."""
    valid_stage(stage_a, what="STAGE_A")
    valid_stage(stage_b, what="STAGE_B")
    target = store(settings())
    a = target.items(stage_a, decrypt=True)
    b = target.items(stage_b, decrypt=True)
    result = compare(a, b)
    if settings().json:
        emit_json(
            {
                "added": {k: _shown(b[k]) for k in result["added"]},
                "removed": {k: _shown(a[k]) for k in result["removed"]},
                "changed": {k: {"from": _shown(a[k]), "to": _shown(b[k])} for k in result["changed"]},
                "unchanged": result["unchanged"],
            }
        )
    else:
        rows = [("+", k, "", _shown(b[k])) for k in result["added"]]
        rows += [("-", k, _shown(a[k]), "") for k in result["removed"]]
        rows += [("~", k, _shown(a[k]), _shown(b[k])) for k in result["changed"]]
        rows.sort(key=lambda row: row[1])
        table(("", "key", stage_a, stage_b), rows, title=f"{stage_a} → {stage_b} in {target.url}")
        message(
            f"{len(result['added'])} added, {len(result['removed'])} removed, "
            f"{len(result['changed'])} changed, {result['unchanged']} unchanged"
        )
    if exit_code and (result["added"] or result["removed"] or result["changed"]):
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("from_stage")
@click.argument("to_stage")
@click.option("--keys", "keys", multiple=True, metavar="KEY[,KEY…]", help="Only these keys (repeatable).")
@click.option("--kms-key", metavar="KEY", help="KMS key to re-encrypt secure values under (they are bound to a stage).")
@click.option("--dry-run", is_flag=True, help="Show what would change, write nothing.")
@global_options
def promote(from_stage: str, to_stage: str, keys: tuple[str, ...], kms_key: str | None, dry_run: bool) -> None:
    """Copy values from FROM_STAGE to TO_STAGE (only those that differ).

    Every key is checked, and every secure value re-encrypted for TO_STAGE, before the first
    write; when the store fails midway, the keys written and not written are listed.
    """
    valid_stage(from_stage, what="FROM_STAGE")
    valid_stage(to_stage, what="TO_STAGE")
    if from_stage == to_stage:
        raise click.UsageError("FROM and TO are the same stage")
    wanted = [valid_key(k.strip(), what="a key of --keys") for spec in keys for k in spec.split(",")]
    target = store(settings())
    source = target.items(from_stage, decrypt=True)
    if wanted:
        missing = sorted(set(wanted) - source.keys())
        if missing:
            raise Failed(f"stage {from_stage} has no key(s) {', '.join(missing)} in {target.url}")
        source = {k: source[k] for k in wanted}
    dest = target.items(to_stage, decrypt=True)
    todo = {k: v for k, v in sorted(source.items()) if k not in dest or dest[k].value != v.value}
    secure = sorted(k for k, v in todo.items() if v.secure)
    if secure and not kms_key and target.url.startswith("ssm:"):
        kms_key = "alias/aws/ssm"  # SecureString under the account's default SSM key
    if secure and not kms_key and target.url.startswith(("dynamodb:", "s3:")) and not dry_run:
        raise UsageFailed(
            f"secure value(s) {', '.join(secure)} must be re-encrypted for stage {to_stage}: pass --kms-key KEY"
        )
    values = {k: v.value for k, v in todo.items()}
    refused = target.check_write(to_stage, values)
    if refused:
        reasons = "; ".join(f"{key}: {reason}" for key, reason in sorted(refused.items()))
        raise Failed(f"{target.url} cannot take these keys in stage {to_stage}, nothing written: {reasons}")
    rows = [("add" if k not in dest else "change", k, _shown(v)) for k, v in todo.items()]
    if settings().json:
        emit_json({k: {"action": action, "value": shown} for action, k, shown in rows})
    elif rows:
        table(("action", "key", "value"), rows, title=f"{from_stage} → {to_stage} in {target.url}")
    if dry_run:
        message(f"dry run: {len(todo)} value(s) would be promoted; nothing written")
        return
    if values:
        with writing(f"promote from {from_stage} to {to_stage} in {target.url}"):
            target.put_many(to_stage, values, kms_key=kms_key if secure else None, secure=secure)
    message(f"promoted {len(todo)} value(s) from {from_stage} to {to_stage} ({len(source) - len(todo)} already equal)")


COMMANDS: list[click.Command] = [import_, export, diff, promote]
