"""Running the installed ``confstage`` console script in a subprocess, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["CONFSTAGE", "run"]

_script = Path(sys.executable).with_name("confstage")
CONFSTAGE: list[str] = [str(_script)] if _script.exists() else [sys.executable, "-m", "confstage.cli"]


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
