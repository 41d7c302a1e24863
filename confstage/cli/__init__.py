"""The admin CLI, ``confstage``: seed, inspect, promote and roll back configuration.

Never imported by ``import confstage`` (click, rich and python-dotenv live in the ``cli`` extra); the CLI
imports the library, not the reverse. Without the extra, ``main`` says which one to install.

::

    app.py        the click group: global options, commands, exceptions → exit status and hints
    errors.py     exit statuses and the expected-failure exceptions
    options.py    the global options, accepted before or after the command name and shown in every --help
    checks.py     stage and key names, files and text from the command line, checked without echoing them
    output.py     stdout/stderr rendering: JSON, tables, masking, the progress bar
    dotenv.py     .env and JSON files in and out
    iam.py        the least-privilege runtime policy builder
    lambda_kms.py ciphertexts for kms-env://, as the Lambda console makes them
    demo.py       the whole story on an embedded local AWS endpoint
    commands/     one module per command family
"""

from __future__ import annotations

import sys

__all__ = ["EXTRA_HINT", "main", "missing_extra"]

# The modules of the ``cli`` extra, by the distribution that provides each.
_EXTRA_MODULES = {"click": "click", "rich": "rich", "dotenv": "python-dotenv"}

# The package is not on an index: from a checkout the extra is installed with -e.
EXTRA_HINT = "pip install -e '.[cli]' from a checkout of confstage (pip install 'confstage[cli]' from an index)"


def missing_extra() -> str | None:
    """The first distribution of the ``cli`` extra that cannot be imported, or None when all can.

    Only ``click`` is imported (the CLI needs it at once); the others are looked up without importing them.
    """
    from importlib.util import find_spec

    for module, distribution in _EXTRA_MODULES.items():
        if module in sys.modules:
            if sys.modules[module] is None:  # an import blocked on purpose
                return distribution
            continue
        try:
            if module == "click":
                __import__(module)
            elif find_spec(module) is None:
                return distribution
        except ImportError:
            return distribution
    return None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI (the ``confstage`` console script); exits with 0, 1 (failed/not found) or 2 (usage).

    Without the ``cli`` extra: one line on stderr naming it, and exit status 2.
    """
    missing = missing_extra()
    if missing is not None:
        sys.stderr.write(f"confstage: the CLI needs its extra ({missing} is missing): {EXTRA_HINT}\n")
        raise SystemExit(2)
    from .app import cli

    cli.main(args=argv, prog_name="confstage")
