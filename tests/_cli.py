"""Running ``confstage``: the installed console script in a subprocess, as an operator would, or
click's CliRunner in this process (same commands, a hundredth of the time)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["CONFSTAGE", "assert_one_line_error", "invoke", "run"]

_script = Path(sys.executable).with_name("confstage")
CONFSTAGE: list[str] = [str(_script)] if _script.exists() else [sys.executable, "-m", "confstage"]


def run(
    *args: str,
    input: str | bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``confstage ARGS`` with the test's environment (fake credentials, the local endpoint)."""
    environ = {**os.environ, "COLUMNS": "200", **(env or {})}
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run(
        [*CONFSTAGE, *args], input=data, capture_output=True, env=environ, timeout=timeout, check=False
    )


def invoke(*args: str, input: str | bytes | None = None, env: Mapping[str, str | None] | None = None) -> Any:
    """Run ``confstage ARGS`` in this process with click's CliRunner; stdout and stderr kept apart.

    The CLI passes region, profile and endpoint to its transport, never through ``os.environ``: any option works.
    A variable given as None in ``env`` is unset for the run.
    """
    from click.testing import CliRunner

    from confstage.cli.app import cli

    return CliRunner().invoke(cli, list(args), input=input, env=env, prog_name="confstage")


def assert_one_line_error(result: Any, *, status: int | tuple[int, ...] = (1, 2), secret: str | None = None) -> str:
    """``result`` failed with ``status`` and one ``Error:`` line on stderr (no traceback, no ``secret``); returns it."""
    statuses = (status,) if isinstance(status, int) else status
    assert result.exit_code in statuses, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    if secret is not None:
        assert secret not in result.output
    return str(lines[0])
