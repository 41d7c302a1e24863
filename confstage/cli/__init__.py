"""The admin CLI, ``confstage``: seed, inspect, promote and roll back configuration.

Never imported by ``import confstage`` (click and rich live in the ``cli`` extra); the CLI
imports the library, not the reverse.

::

    app.py        the click group: global options, commands, exceptions → exit status
    errors.py     exit statuses and the expected-failure exceptions
    options.py    the global options, accepted before or after the command name
    checks.py     stage and key names, files and text from the command line, checked without echoing them
    output.py     stdout/stderr rendering: JSON, tables, masking, the progress bar
    dotenv.py     .env and JSON files in and out
    iam.py        the least-privilege runtime policy builder
    lambda_kms.py ciphertexts for kms-env://, as the Lambda console makes them
    demo.py       the whole story on an embedded local AWS endpoint
    commands/     one module per command family
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (the ``confstage`` console script); exits with 0, 1 (failed/not found) or 2 (usage)."""
    from .app import cli

    cli.main(args=argv, prog_name="confstage")
