"""confstage/snapstart.py passes ``mypy --strict`` whether or not the runtime's SnapStart module is installed.

The managed Python runtimes ship ``snapshot_restore_py``; a developer may install
``snapshot-restore-py``, typed or not. A ``# type: ignore[import-not-found]`` broke the third case
as an unused ignore. Each case runs mypy on the module with the project's settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULES = {
    "absent": None,
    "typed-stub": (
        "snapshot_restore_py.pyi",
        "from collections.abc import Callable\n\ndef register_after_restore(func: Callable[[], object]) -> None: ...\n",
    ),
    "untyped-module": ("snapshot_restore_py.py", "def register_after_restore(func):\n    func()\n"),
}


@pytest.mark.parametrize("installed", sorted(MODULES))
def test_snapstart_type_checks_with_and_without_the_runtime_module(installed: str, tmp_path: Path) -> None:
    """mypy --strict (warn_unused_ignores on) finds no error in snapstart.py, whatever snapshot_restore_py is."""
    path = tmp_path / "path"
    path.mkdir()
    module = MODULES[installed]
    if module is not None:
        (path / module[0]).write_text(module[1])
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=skip",  # this module's own lines; the rest of the package is checked by the suite
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "confstage/snapstart.py",
        ],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
