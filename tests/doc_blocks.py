"""Running the documentation's code blocks: a reader's terminal for ``console`` blocks, and the runners.

The Markdown files are collected by pytest-markdown-docs (``--markdown-docs``, set in
``pyproject.toml``). It runs ``python`` fences itself; this module adds what it does not do:

* ``console`` fences: each ``$ command`` runs with bash, in order, in a ``Shell`` that keeps the
  environment and working directory from one command to the next and from one block to the next
  (a fixture named in the fence, e.g. ``console fixture:cli_tour``, gives the block its shell).
  Lines after a command are its expected standard output (``...`` stands for any lines); a
  command that exits with a non-zero status fails the block.
* ``python runner:PytestFile`` fences: the block is a test module; it runs under pytest in a
  subprocess, as the reader's own test suite would, and must pass.
* ``python runner:PythonScript`` fences: the block runs as a script in a fresh interpreter, for what
  depends on what is imported (pytest itself has imported ``confstage.testing`` by then).

pytest-markdown-docs 0.9 collects ``python`` fences only, so ``console_fences`` (a markdown-it
core rule installed by the ``pytest_markdown_docs_markdown_it`` hook in the root ``conftest.py``)
relabels ``console`` fences as ``python runner:ConsoleRunner``. A fence marked ``notest`` is left alone
and never runs: the pages say why in the text around it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_markdown_docs._runners import DefaultRunner, register_runner
from pytest_markdown_docs.definitions import FenceTestDefinition

__all__ = [
    "Command",
    "ConsoleRunner",
    "PytestFile",
    "PythonScript",
    "Shell",
    "console_fences",
    "match_output",
    "parse_console",
]

BIN = str(Path(sys.executable).parent)  # the interpreter's scripts: confstage, aws, cfn-lint, python
PROMPT = "$ "
ANY = "..."  # a line of expected output that stands for any number of lines


@dataclass(frozen=True)
class Command:
    """One ``$ command`` of a console block (continuation lines included) and the output shown under it."""

    text: str
    expected: tuple[str, ...]
    line: int  # where it starts in the Markdown file, 1-based


def parse_console(source: str, first_line: int = 1) -> list[Command]:
    """The commands of a console block: ``$`` lines, ``\\``-continued lines, then the lines of output."""
    commands: list[Command] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith(PROMPT):
            if line.strip():
                raise ValueError(f"line {first_line + i}: output before any '$ ' command: {line!r}")
            i += 1
            continue
        start = i
        text = [line[len(PROMPT) :]]
        while text[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            text.append(lines[i])
        i += 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith(PROMPT):
            output.append(lines[i].rstrip())
            i += 1
        while output and not output[-1]:
            output.pop()
        commands.append(Command("\n".join(text), tuple(output), first_line + start))
    return commands


def match_output(expected: Iterable[str], actual: str) -> bool:
    """Whether ``actual`` shows ``expected`` line for line (trailing spaces ignored; ``...`` matches any lines)."""
    want = list(expected)
    got = [line.rstrip() for line in actual.rstrip("\n").split("\n")] if actual.strip() else []

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i] == ANY:
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and got[j] == want[i] and match(i + 1, j + 1)

    return match(0, 0)


class Shell:
    """A reader's terminal: bash runs each command; exported variables and the directory carry over."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', os.defpath)}"
        self.history: list[str] = []

    def run(self, command: str, *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run one command as typed; return what it printed and its status, keeping its environment and directory."""
        self.history.append(command)
        with tempfile.TemporaryDirectory(prefix="confstage-shell-") as scratch:
            state = Path(scratch)
            script = state / "command.sh"
            # set -a: a plain assignment (FIRST=$(…)) is kept for the next command, as in a terminal.
            script.write_text(
                "set -a -o pipefail\n"
                f"{command}\n"
                "__status=$?\n"
                f'pwd > "{state}/pwd"; env -0 > "{state}/env"\n'
                "exit $__status\n"
            )
            result = subprocess.run(
                ["/bin/bash", "--noprofile", "--norc", str(script)],
                cwd=self.cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if (state / "env").exists():
                pairs = (item.partition("=") for item in (state / "env").read_text().split("\0") if item)
                self.env = {name: value for name, _, value in pairs if not name.startswith("BASH_FUNC_")}
                self.cwd = Path((state / "pwd").read_text().strip())
        return result


def _shell_of(args: Mapping[str, Any]) -> Shell:
    shells = [value for value in args.values() if isinstance(value, Shell)]
    if len(shells) != 1:
        raise LookupError("a console block names exactly one fixture that gives a Shell, e.g. console fixture:terminal")
    return shells[0]


class BlockFailed(AssertionError):
    """A command of a documentation block did not do what the page shows."""


class _Runner(DefaultRunner):
    """A runner whose own failures (``BlockFailed``) are shown as they are written, without a traceback."""

    def repr_failure(self, test: FenceTestDefinition, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, BlockFailed):
            return str(excinfo.value)
        return str(super().repr_failure(test, excinfo, style))


@register_runner()
class ConsoleRunner(_Runner):
    """Runs a console block's commands in the fixture's Shell, checking each status and any output shown."""

    def runtest(self, test: FenceTestDefinition, args: Any, *, asyncio_runner: Any = None) -> None:
        shell = _shell_of(args)
        body = test.source.lstrip("\n")
        first_line = test.start_line + 1
        for command in parse_console(body, first_line):
            result = shell.run(command.text)
            where = f"{test.source_path}:{command.line}: $ {command.text}"
            if result.returncode != 0:
                raise BlockFailed(
                    f"{where}\nexited with status {result.returncode}\n"
                    f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
                )
            if command.expected and not match_output(command.expected, result.stdout):
                shown = "\n".join(command.expected)
                raise BlockFailed(
                    f"{where}\nprinted something else than the page shows\n"
                    f"--- the page\n{shown}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
                )


def _run_fresh(test: FenceTestDefinition, filename: str, argv: list[str], what: str) -> str:
    """Write the block to ``filename`` in a temporary project and run ``argv + [that file]`` there, in a fresh
    interpreter without the tests' CONFSTAGE_* and PYTEST_* variables; its stdout, or ``BlockFailed`` saying
    ``what`` failed."""
    with tempfile.TemporaryDirectory(prefix="confstage-reader-") as project:
        path = Path(project) / filename
        path.write_text(test.source)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFSTAGE_", "PYTEST_"))}
        result = subprocess.run(
            [*argv, str(path)], cwd=project, env=env, capture_output=True, text=True, timeout=180, check=False
        )
    if result.returncode != 0:
        raise BlockFailed(f"{test.source_path}:{test.start_line}: {what} failed\n{result.stdout}{result.stderr}")
    return result.stdout


@register_runner()
class PytestFile(_Runner):
    """Runs a python block as a test module of the reader's own project (pytest in a subprocess, warnings as errors)."""

    def runtest(self, test: FenceTestDefinition, args: Any, *, asyncio_runner: Any = None) -> None:
        argv = [sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"]
        stdout = _run_fresh(test, "test_from_docs.py", argv, "the test module")
        if " passed" not in stdout:
            raise BlockFailed(f"{test.source_path}:{test.start_line}: the test module failed\n{stdout}")


@register_runner()
class PythonScript(_Runner):
    """Runs a python block as a script in a fresh interpreter (nothing imported before it, warnings as errors)."""

    def runtest(self, test: FenceTestDefinition, args: Any, *, asyncio_runner: Any = None) -> None:
        _run_fresh(test, "script.py", [sys.executable, "-W", "error"], "the script")


def console_fences(state: Any) -> None:
    """markdown-it core rule: a ``console`` fence (not ``notest``) becomes a fence pytest-markdown-docs collects."""
    for token in state.tokens:
        if token.type != "fence":
            continue
        words = token.info.split()
        if words and words[0] == "console" and "notest" not in words:
            token.info = " ".join(["python", "runner:ConsoleRunner", *words[1:]])


def copy_checkout(source: Path, target: Path) -> Path:
    """A copy of the repository's files (no virtualenvs, caches or git data), as a reader's fresh clone holds them."""
    ignored = shutil.ignore_patterns(
        ".git", ".venv", ".tox", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache", "site", "dist", "build"
    )
    shutil.copytree(source, target, ignore=ignored)
    return target
