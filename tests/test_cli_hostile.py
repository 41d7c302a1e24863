"""Hostile input to the CLI: odd keys and stages, files that are empty, binary, huge, FIFOs, directories.

Every refusal is exit 1 or 2 with one ``Error:`` line naming what was wrong: never a traceback,
never the key that broke the rule, never a value. Legal but odd names simply work. In-process
(click's CliRunner); the AWS endpoint is a closed port unless a test asks for the local one, so a
refusal that comes before any request is shown to come before it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ._cli import assert_one_line_error, invoke

TABLE = "dynamodb://cfg"

BAD_KEYS = ["", "/a", "a/", ".", "..", "a/../b", "a//b", "./a", "a\x00b", "a\nb", "\x1b[31mred", "k" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
@pytest.mark.parametrize(
    "command",
    [
        ("put", "{}", "v"),
        ("get", "{}"),
        ("delete", "{}"),
        ("history", "{}"),
        ("rollback", "{}", "--to", "1"),
        ("promote", "DEV", "PRD", "--keys", "{}"),
    ],
    ids=lambda command: command[0],
)
def test_keys_that_break_the_rule_exit_2_without_being_repeated(command: tuple[str, ...], key: str) -> None:
    """A KEY outside the key rule is a usage error naming the rule and the broken part, never the key."""
    result = invoke(*(key if arg == "{}" else arg for arg in command), "--stage", "DEV", "--source", TABLE)
    line = assert_one_line_error(result, status=2)
    assert "not a valid key name" in line
    assert len(key) < 4 or key not in line


@pytest.fixture(name="table")
def fixture_table(cfg_table: str) -> str:
    """The stage-key table cfg on the local endpoint (conftest's)."""
    return cfg_table


@pytest.mark.integration
@pytest.mark.parametrize("key", ["_", "ключ", "a.b-c/d_e", "with space", "k" * 1024, "emoji/🔑"])
def test_odd_but_legal_keys_round_trip(key: str, table: str) -> None:
    """Keys the rule allows (underscore, unicode, nesting, spaces, 1024 bytes) are written and read back as given."""
    assert invoke("put", key, "v", "--stage", "DEV", "--source", table).exit_code == 0
    result = invoke("get", key, "--stage", "DEV", "--source", table)
    assert (result.exit_code, result.stdout) == (0, "v\n")


@pytest.mark.parametrize(("key", "rule"), [("ключ", "only letters, digits"), ("a/" * 14 + "z", "at most 15")])
def test_a_key_the_store_cannot_hold_exits_2_naming_the_store_rule(key: str, rule: str) -> None:
    """A legal key that SSM's naming rules refuse is refused before any request, naming SSM's rule."""
    line = assert_one_line_error(invoke("put", key, "v", "--stage", "DEV", "--source", "ssm:///app"), status=2)
    assert rule in line
    assert key not in line


def _binary() -> bytes:
    return bytes(range(256))


# name -> (file content, what the error says): every file is refused with exit 1 by import.
FILES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "holds no values"),
    "binary": (_binary(), "not UTF-8 text (line 2, byte 118)"),
    "latin-1": ("ok=1\nclé=café\n".encode("latin-1"), "not UTF-8 text (line 2, byte 3)"),
    "nul bytes": (b"A=1\x00\nB\x00=2\n", "line 2, column 2: not a valid key"),
    "huge line": (b"x" * 5_000_000, "line 1: expected KEY=VALUE"),
    "huge quote": (b'A="' + b"x\n" * 200_000, "line 1, column 3: unterminated double quote"),
    "only comments": (b"# nothing\n\n   # here\n", "holds no values"),
    "bom then key": (b"\xef\xbb\xbf\xef\xbb\xbfA=1", "line 1, column 1: not a valid key"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_import_refuses_bad_files_with_one_line(name: str, tmp_path: Path) -> None:
    """Empty, binary, non-UTF-8, NUL-laden and huge files: exit 1 in well under a second or two, naming the place."""
    content, problem = FILES[name]
    path = tmp_path / "values.env"
    path.write_bytes(content)
    started = time.monotonic()
    result = invoke("import", str(path), "--stage", "DEV", "--source", TABLE)
    elapsed = time.monotonic() - started
    line = assert_one_line_error(result, status=1)
    assert problem in line
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert "xxxx" not in line


def invoke_bounded(*args: str, seconds: float = 10) -> Any:
    """``invoke`` in a thread, failing the test if it has not returned within ``seconds`` (a FIFO must not hang)."""
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(invoke(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"confstage {' '.join(args)} still running after {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "missing"])
@pytest.mark.parametrize("command", ["import", "put"])
def test_a_file_that_is_not_a_regular_file_is_refused_without_reading_it(
    kind: str, command: str, tmp_path: Path
) -> None:
    """A FIFO with no writer, a directory, /dev/zero or a missing path: exit 1 at once, naming what it is."""
    path = tmp_path / "thing"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "device":
        path = Path("/dev/zero")
    args = ["import", str(path)] if command == "import" else ["put", "k", "--file", str(path)]
    result = invoke_bounded(*args, "--stage", "DEV", "--source", TABLE)
    line = assert_one_line_error(result, status=1)
    expected = {
        "fifo": "is a FIFO",
        "directory": "is a directory",
        "device": "is a character device",
        "missing": "No such file",
    }
    assert expected[kind] in line


@pytest.mark.parametrize(
    ("args", "stdin", "problem"),
    [
        (("put", "k", "--file", "-"), b"", "stdin is empty"),
        (("put", "k"), b"", "stdin is empty"),
        (("put", "k"), b"\xff\xfe", "stdin is not UTF-8 text (line 1, byte 1)"),
        (("import", "-"), b"\xff", "<stdin> is not UTF-8 text (line 1, byte 1)"),
        (("encrypt", "--kms-key", "k", "--function", "f"), b"\n", "KMS encrypts 1 to 4096"),
        (("encrypt", "--kms-key", "k", "--function", "f"), b"x" * 5000, "5000 bytes; KMS encrypts 1 to 4096"),
    ],
)
def test_bad_stdin_is_refused_with_one_line(args: tuple[str, ...], stdin: bytes, problem: str) -> None:
    """An empty, non-UTF-8 or oversized value on stdin: exit 1, one line, before any request."""
    line = assert_one_line_error(invoke(*args, "--stage", "DEV", "--source", TABLE, input=stdin), status=1)
    assert problem in line


@pytest.mark.integration
def test_a_huge_value_from_a_file_is_refused_by_the_store_limit(table: str, tmp_path: Path) -> None:
    """A 5 MB --file for DynamoDB exits 2 naming the 400 KB item limit, and writes nothing."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 5_000_000)
    line = assert_one_line_error(invoke("put", "big", "--file", str(path), "--stage", "DEV", "--source", table))
    assert "at most 409600 bytes" in line
    assert invoke("get", "big", "--stage", "DEV", "--source", table).exit_code == 1
