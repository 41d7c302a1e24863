"""Moving values in bulk: ``import export diff promote``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from confstage.cli.checks import decode, read_input, valid_key, valid_stage
from confstage.cli.dotenv import DotenvError, Entry, format_dotenv, load_entries
from confstage.cli.errors import Failed, UsageFailed
from confstage.cli.options import ConfstageCommand, Settings
from confstage.cli.output import MASK, emit_json, message, progress, reading, report, table
from confstage.stores import StoredValue

from .common import store, writing

__all__ = ["COMMANDS", "compare"]


@click.command(cls=ConfstageCommand, name="import")
@click.argument("file", metavar="FILE")
@click.option("--secure", is_flag=True, help="Envelope-encrypt every imported value (needs --kms-key).")
@click.option("--kms-key", metavar="KEY", help="KMS key for --secure.")
@click.option("--dry-run", is_flag=True, help="Show what would be written, write nothing.")
@click.pass_obj
def import_(options: Settings, file: str, secure: bool, kms_key: str | None, dry_run: bool) -> None:
    """Write every value of FILE (.env or a JSON object; '-' for stdin) to the stage.

    The whole file is read and checked, and every secure value encrypted, before the first write;
    when the store fails midway, the keys written and not written are listed.
    """
    if secure != bool(kms_key):
        raise click.UsageError("--secure and --kms-key go together")
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
    record = {"action": "import", "file": name, "stage": stage, "store": target.url, "secure": secure}
    if dry_run:
        current = target.items(stage)
        changes = {key: "change" if key in current else "add" for key in values}
        if not options.json:
            for key, change in changes.items():
                message(f"would {change} {key}")
        report(
            options.json,
            {**record, "dry_run": True, "count": len(values), "keys": changes},
            f"dry run: {len(values)} value(s) for stage {stage} in {target.url}; nothing written",
        )
        return
    with writing(f"import into stage {stage} of {target.url}"), progress(f"importing into {stage}", len(values)) as bar:
        target.put_many(stage, values, kms_key=kms_key if secure else None, progress=bar.advance)
    report(
        options.json,
        {**record, "dry_run": False, "count": len(values), "keys": list(values)},
        f"imported {len(values)} value(s) into stage {stage} of {target.url}",
    )


def _refused_lines(refused: Mapping[str, str], entries: Mapping[str, Entry], *, name: str, url: str) -> str:
    """One line for the store's refusal of a file's keys: the first by line, and the lines of the rest."""
    ordered = sorted(refused, key=lambda key: (entries[key].line, entries[key].column))
    first = entries[ordered[0]]
    text = f"{name}, line {first.line}, column {first.column}: {url} cannot take this entry: {refused[ordered[0]]}"
    if len(ordered) > 1:
        more = ", ".join(str(entries[key].line) for key in ordered[1:11])
        text += f"; {len(ordered) - 1} more on line(s) {more}{', …' if len(ordered) > 11 else ''}"
    return text + "; nothing written"


@click.command(cls=ConfstageCommand)
@click.option("--format", "format_", type=click.Choice(["dotenv", "json"]), default="dotenv", show_default=True)
@click.option("--reveal", is_flag=True, help="Include secure values in plaintext (left out otherwise).")
@click.pass_obj
def export(options: Settings, format_: str, reveal: bool) -> None:
    """Print every value of the stage as .env or a JSON object (secure values left out unless --reveal)."""
    stage = options.require_stage()
    target = store(options)
    with reading(f"reading stage {stage} of {target.url}"):
        stored = target.items(stage, decrypt=reveal)
    values = {key: item.value for key, item in sorted(stored.items()) if reveal or not item.secure}
    left_out = sorted(key for key, item in stored.items() if item.secure and not reveal)
    if format_ == "json" or options.json:
        emit_json(values)
    else:
        click.echo(format_dotenv(values), nl=False)
    if left_out:
        message(f"left out {len(left_out)} secure value(s) ({', '.join(left_out)}); --reveal includes them")


def compare(a: Mapping[str, StoredValue], b: Mapping[str, StoredValue]) -> dict[str, Any]:
    """Keys added in ``b``, removed from ``a``, changed between them, and how many are unchanged."""
    added = sorted(b.keys() - a.keys())
    removed = sorted(a.keys() - b.keys())
    changed = sorted(k for k in a.keys() & b.keys() if a[k].value != b[k].value)
    unchanged = len(a.keys() & b.keys()) - len(changed)
    return {"added": added, "removed": removed, "changed": changed, "unchanged": unchanged}


def _shown(item: StoredValue) -> str:
    return MASK if item.secure else item.value


@click.command(cls=ConfstageCommand)
@click.argument("stage_a")
@click.argument("stage_b")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the stages differ (like git diff --exit-code).")
@click.pass_obj
def diff(options: Settings, stage_a: str, stage_b: str, exit_code: bool) -> None:
    """Compare two stages: keys added in STAGE_B, removed from STAGE_A, changed (secure values never shown)."""
    valid_stage(stage_a, what="STAGE_A")
    valid_stage(stage_b, what="STAGE_B")
    target = store(options)
    a = target.items(stage_a, decrypt=True)
    b = target.items(stage_b, decrypt=True)
    result = compare(a, b)
    if options.json:
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


@click.command(cls=ConfstageCommand)
@click.argument("from_stage")
@click.argument("to_stage")
@click.option("--keys", "keys", multiple=True, metavar="KEY[,KEY…]", help="Only these keys (repeatable).")
@click.option("--kms-key", metavar="KEY", help="KMS key to re-encrypt secure values under (they are bound to a stage).")
@click.option("--dry-run", is_flag=True, help="Show what would change, write nothing.")
@click.pass_obj
def promote(
    options: Settings, from_stage: str, to_stage: str, keys: tuple[str, ...], kms_key: str | None, dry_run: bool
) -> None:
    """Copy values from FROM_STAGE to TO_STAGE (only those that differ).

    Every key is checked, and every secure value re-encrypted for TO_STAGE, before the first
    write; when the store fails midway, the keys written and not written are listed.
    """
    valid_stage(from_stage, what="FROM_STAGE")
    valid_stage(to_stage, what="TO_STAGE")
    if from_stage == to_stage:
        raise click.UsageError("FROM and TO are the same stage")
    wanted = [valid_key(k.strip(), what="a key of --keys") for spec in keys for k in spec.split(",")]
    target = store(options)
    with reading(f"reading stages {from_stage} and {to_stage} of {target.url}"):
        source = target.items(from_stage, decrypt=True)
        dest = target.items(to_stage, decrypt=True)
    if wanted:
        missing = sorted(set(wanted) - source.keys())
        if missing:
            raise Failed(f"stage {from_stage} has no key(s) {', '.join(missing)} in {target.url}")
        source = {k: source[k] for k in wanted}
    todo = {k: v for k, v in sorted(source.items()) if k not in dest or dest[k].value != v.value}
    secure = sorted(k for k, v in todo.items() if v.secure)
    kms_key = kms_key or target.default_kms_key
    if secure and not kms_key and target.needs_kms_key and not dry_run:
        raise UsageFailed(
            f"secure value(s) {', '.join(secure)} must be re-encrypted for stage {to_stage}: pass --kms-key KEY"
        )
    values = {k: v.value for k, v in todo.items()}
    refused = target.check_write(to_stage, values)
    if refused:
        reasons = "; ".join(f"{key}: {reason}" for key, reason in sorted(refused.items()))
        raise Failed(f"{target.url} cannot take these keys in stage {to_stage}, nothing written: {reasons}")
    rows = [("add" if k not in dest else "change", k, _shown(v)) for k, v in todo.items()]
    record = {
        "action": "promote",
        "from": from_stage,
        "to": to_stage,
        "store": target.url,
        "dry_run": dry_run,
        "count": len(todo),
        "unchanged": len(source) - len(todo),
        "keys": {k: action for action, k, _ in rows},
        "secure": secure,
    }
    if rows and not options.json:
        table(("action", "key", "value"), rows, title=f"{from_stage} → {to_stage} in {target.url}")
    if dry_run:
        report(options.json, record, f"dry run: {len(todo)} value(s) would be promoted; nothing written")
        return
    if values:
        with (
            writing(f"promote from {from_stage} to {to_stage} in {target.url}"),
            progress(f"promoting to {to_stage}", len(values)) as bar,
        ):
            target.put_many(to_stage, values, kms_key=kms_key if secure else None, secure=secure, progress=bar.advance)
    report(
        options.json,
        record,
        f"promoted {len(todo)} value(s) from {from_stage} to {to_stage} ({len(source) - len(todo)} already equal)",
    )


COMMANDS: list[click.Command] = [import_, export, diff, promote]
