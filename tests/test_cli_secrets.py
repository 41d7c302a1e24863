"""No error of the CLI ever quotes what a file, stdin or a value argument holds (issue 10, item 6).

A password pasted where a key belongs, a PEM block left unquoted, a value where a file name
belongs: the error names the file, the line and the column, never the text. hypothesis places a
recognisable secret everywhere the .env and JSON grammars give a meaning to, and in random text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confstage.cli.dotenv import DotenvError, load_entries

from ._cli import assert_one_line_error, invoke

# The escape character makes the secret an illegal key wherever it lands (the key rule refuses control
# characters), so a correct CLI has no reason to print it, even as a key name.
SECRET = "S3CR3T\x1bhunter2!"
FRAGMENTS = ("S3CR3T", "hunter2")
TABLE = "dynamodb://cfg"


def leaks(text: str) -> bool:
    return any(fragment in text for fragment in FRAGMENTS)


# Places the .env grammar gives a meaning to: ``{m}`` is the secret, ``{a}``/``{b}`` arbitrary text.
DOTENV_PLACES = [
    "{m}",
    "{m}=value",
    "{a}{m}{b}=value",
    "export {m}=value",
    "  {m} = value  # comment",
    "{m}==",
    'KEY="{a}{m}{b}',
    "KEY='{a}{m}{b}",
    'KEY="ok" {m}',
    "KEY='ok'{a}{m}",
    "KEY=-----BEGIN PRIVATE KEY-----\n{m}\n-----END PRIVATE KEY-----",
    "KEY=-----BEGIN PRIVATE KEY-----\nMIIEv{m}AB==\n-----END PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\n{a}{m}{b}\n-----END PRIVATE KEY-----",
    "KEY={a}{m}{b}",
    'KEY="{a}{m}\n{b}"',
]
# Places in JSON: ``{j}`` is the secret as a JSON string's body, ``{a}``/``{b}`` raw text, ``{ja}`` escaped text.
JSON_PLACES = [
    '{"{j}": "value"}',
    '{"k": "v", "{ja}{j}": null}',
    '{"k": null, "x": "{j}"}',
    '{"k": "{j}"',
    '{"k": {m}}',
    '{"k": "{j}" "x": 1}',
    '{"k": "{j}{a}"}',
    '["{j}"]',
    '"{j}"',
    '{"k": ["{j}", {"n": "{j}"}]}',
    '{"{j}": {"k": 1}}',
    '{"k": "v",\n  "{ja}": "{j}",\n  {a}{m}{b}\n}',
    '{"k": ' + "[" * 5000 + '"{j}"' + "]" * 5000 + "}",
]

_text = st.text(max_size=12)
_lines = st.lists(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}=[A-Za-z0-9 ]{0,8}", fullmatch=True), max_size=3)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A .env or JSON document with the secret in a meaningful place, or anywhere in random text."""
    a, b = draw(_text), draw(_text)
    kind = draw(st.sampled_from(["dotenv", "json", "random"]))
    if kind == "random":
        text = draw(st.text(max_size=60))
        at = draw(st.integers(0, len(text)))
        return text[:at] + SECRET + text[at:]
    if kind == "json":
        place = draw(st.sampled_from(JSON_PLACES))
        escaped = json.dumps(SECRET)[1:-1]
        return (
            place.replace("{ja}", json.dumps(a)[1:-1])
            .replace("{a}", a)
            .replace("{b}", b)
            .replace("{j}", escaped)
            .replace("{m}", SECRET)
        )
    place = draw(st.sampled_from(DOTENV_PLACES)).replace("{a}", a).replace("{b}", b).replace("{m}", SECRET)
    before, after = draw(_lines), draw(_lines)
    return "\n".join([*before, place, *after])


@given(document=documents(), name=st.sampled_from(["values.env", "values.json", "<stdin>"]))
def test_no_parse_error_quotes_the_file(document: str, name: str) -> None:
    """load_entries either reads the document or raises one-line DotenvError without any of its text."""
    error: DotenvError | None = None
    try:
        load_entries(document, name=name)
    except DotenvError as exc:
        error = exc
    if error is not None:
        assert not leaks(str(error)), str(error)
        assert "\n" not in str(error)
        assert error.__cause__ is None


@pytest.mark.parametrize(
    ("document", "where"),
    [
        (f"ok=1\n{SECRET} = x\n", "line 2, column 7"),
        ("ok=1\nhunter2 S3CR3T=x\n", "line 2, column 8"),
        (f"PEM=-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n", "line 1, column 5"),
        (f'A="{SECRET}', "line 1, column 3"),
        (f'A="x" {SECRET}\n', "line 1, column 7"),
        ('{"ok": "1",\n "S3CR3T hunter2\\u0000": "x"}', "line 2, column 2"),
        ('{"ok": "1",\n "S3CR3T": null}', "line 2, column 12"),
        ('{"ok": "1", "k": S3CR3T}', "line 1, column 18"),
    ],
)
def test_errors_name_the_line_and_column_instead(document: str, where: str) -> None:
    """The error says where the problem is: line and column, counted in characters from 1."""
    with pytest.raises(DotenvError) as info:
        load_entries(document, name="app.env" if not document.startswith("{") else "app.json")
    assert where in str(info.value)
    assert not leaks(str(info.value))


@pytest.fixture(name="table")
def fixture_table(cfg_table: str) -> str:
    """The stage-key table cfg on the local endpoint (conftest's)."""
    return cfg_table


@pytest.mark.integration
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    document=documents(),
    how=st.sampled_from(["import", "import --dry-run", "import -", "put --file", "put -"]),
    suffix=st.sampled_from([".env", ".json"]),
)
def test_the_cli_never_prints_what_a_file_holds(
    document: str, how: str, suffix: str, table: str, tmp_path: Path
) -> None:
    """import and put --file/stdin, whatever the document: exit 0 or 1, no traceback, no text of the file."""
    path = tmp_path / f"values{suffix}"
    path.write_text(document, encoding="utf-8", errors="surrogatepass")
    command, _, option = how.partition(" ")
    if command == "import":
        args = ["import", "-" if option == "-" else str(path), *(["--dry-run"] if option == "--dry-run" else [])]
    else:
        args = ["put", "value", "--file", "-" if option == "-" else str(path)]
    stdin = path.read_bytes() if option == "-" else None
    result = invoke(*args, "--stage", "DEV", "--source", table, input=stdin)
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert not leaks(result.output), result.output


@pytest.mark.parametrize(
    "args",
    [
        ("put", "db_password", "hunter2", "S3CR3T"),
        ("put", "db_password", "--S3CR3T-hunter2"),
        ("put", "db_password", "-S3CR3T"),
        ("encrypt", "hunter2", "S3CR3T", "--kms-key", "k", "--function", "f"),
        ("encrypt", "--hunter2=S3CR3T", "--kms-key", "k", "--function", "f"),
    ],
)
def test_usage_errors_of_value_commands_do_not_repeat_the_command_line(args: tuple[str, ...]) -> None:
    """A value split by a space or starting with a dash is a usage error that does not quote it."""
    result = invoke(*args, "--stage", "DEV")
    assert result.exit_code == 2
    assert not leaks(result.output), result.output
    assert "Error:" in result.stderr


@pytest.mark.parametrize("command", [("import",), ("put", "k", "--file")])
def test_a_value_given_where_a_file_name_belongs_is_not_repeated(command: tuple[str, ...]) -> None:
    """A FILE that does not open is not echoed: it may be the content pasted in place of its name."""
    result = invoke(*command, f"DB_PASSWORD={SECRET}", "--stage", "DEV", "--source", TABLE)
    line = assert_one_line_error(result, status=1)
    assert "cannot open" in line
    assert not leaks(result.output)


def test_an_unexpected_exception_is_one_line_without_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last resort: a bug's exception is named by its type, its message (which may quote a value) left out."""
    import confstage.cli.commands.transfer as transfer

    def broken(text: str, *, name: str) -> Any:
        raise RuntimeError(f"cannot parse {text!r}")

    monkeypatch.setattr(transfer, "load_entries", broken)
    result = invoke("import", "-", "--stage", "DEV", "--source", TABLE, input=f"A={SECRET}\n")
    line = assert_one_line_error(result, status=1)
    assert "RuntimeError" in line
    assert not leaks(result.output)
