"""``confstage check``: every key a manifest requires, present and valid in every stage named (a deploy gate).

::

    check [--manifest FILE | --settings MODULE:CLASS] [--stage S ...]
      ├── manifest.load          the file (TOML/JSON) or the settings class; a bad one is a usage error (2)
      ├── stages                 every --stage given, else the manifest's ``stages``, else $CONFSTAGE_STAGE
      └── manifest.check         one read per stage and source (Config.locate), problems → table or JSON; exit 1

The group's ``--stage`` is single-valued (the last one wins for every other command); this command reads every
``--stage`` of the command line from the arguments the group saw (``ctx.meta[ARGS]``, set by ``ConfstageGroup``).
"""

from __future__ import annotations

import time

import click

from confstage.cli.checks import valid_stage
from confstage.cli.errors import UsageFailed
from confstage.cli.options import GLOBAL_OPTIONS, ConfstageCommand, Settings
from confstage.cli.output import emit_json, message, table
from confstage.client import Config
from confstage.manifest import Manifest, ManifestError, check, from_file, from_settings, import_class

__all__ = ["ARGS", "COMMANDS", "command_line_stages"]

ARGS = "confstage.args"  # ctx.meta key: the command line as the group received it, before hoisting
_OWN_VALUED = frozenset({"--manifest", "--settings"})


@click.command(cls=ConfstageCommand, name="check")
@click.option("--manifest", "manifest_file", metavar="FILE", help="Manifest file (TOML or JSON) of required keys.")
@click.option("--settings", "settings_class", metavar="MODULE:CLASS", help="A settings class: its fields are the keys.")
@click.pass_context
def check_command(ctx: click.Context, manifest_file: str | None, settings_class: str | None) -> None:
    """Check that every key of a manifest is present and valid in each stage (repeat --stage for several).

    Exit 0 when all hold, 1 when any does not (each problem: stage, key, what is wrong, source; never a value).
    """
    options: Settings = ctx.obj
    if (manifest_file is None) == (settings_class is None):
        raise click.UsageError("give --manifest FILE or --settings MODULE:CLASS (one of them)")
    try:
        manifest = from_file(manifest_file) if manifest_file else from_settings(import_class(str(settings_class)))
    except ManifestError as exc:
        raise UsageFailed(str(exc)) from None
    stages = _stages(ctx, options, manifest)
    config = Config(options.urls, cache_dir="", transport=options.transport())
    started = time.perf_counter()
    problems = check(config, manifest, stages)
    elapsed = time.perf_counter() - started
    if options.json:
        emit_json([problem._asdict() for problem in problems])
    elif problems:
        table(("stage", "key", "problem", "source"), problems, title=f"confstage check — {manifest.origin}")
    fetches = config.stats()["total"]["fetches"]
    message(
        f"checked {len(manifest.entries)} key(s) in {len(stages)} stage(s) ({', '.join(stages)}) across "
        f"{len(options.urls)} source(s) in {elapsed:.2f} s, {fetches} fetch(es): "
        + (f"{len(problems)} problem(s)" if problems else "all present and valid")
    )
    if problems:
        ctx.exit(1)


def _stages(ctx: click.Context, options: Settings, manifest: Manifest) -> list[str]:
    """Every ``--stage`` on the command line, else the manifest's stages, else ``$CONFSTAGE_STAGE``."""
    given = command_line_stages(ctx.find_root().meta.get(ARGS, []))
    if given:
        return [valid_stage(stage, what="--stage") for stage in dict.fromkeys(given)]
    if manifest.stages:
        return list(manifest.stages)
    if options.stage is not None:
        return [options.require_stage()]
    raise click.UsageError(
        "no stage: pass --stage STAGE (repeatable), list stages in the manifest or set CONFSTAGE_STAGE"
    )


def command_line_stages(args: list[str]) -> list[str]:
    """The values of every ``--stage`` in ``args`` (before a ``--``), in order."""
    stages: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            break
        name, equals, value = arg.partition("=")
        if name == "--stage":
            if equals:
                stages.append(value)
            elif index + 1 < len(args):
                stages.append(args[index + 1])
            index += 1 if equals else 2
        elif not equals and (name in GLOBAL_OPTIONS or name in _OWN_VALUED):
            index += 2  # the option's value is never read as an option
        else:
            index += 1
    return stages


COMMANDS: list[click.Command] = [check_command]
