"""The .env and JSON value files read and written by ``confstage import`` / ``export``."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from confstage.cli.dotenv import (
    DotenvError,
    dotenv_entries,
    format_dotenv,
    load_entries,
    load_values,
    parse_dotenv,
    parse_json_values,
)
from confstage.names import key_refusal


def test_comments_blank_lines_and_export_prefix_are_skipped() -> None:
    """Blank lines and # comments are ignored and ``export KEY=`` is the same as ``KEY=``."""
    text = "# a comment\n\nexport A=1\n   # indented comment\nB=2\n"
    assert parse_dotenv(text) == {"A": "1", "B": "2"}


def test_value_keeps_equals_signs_after_the_first() -> None:
    """Only the first ``=`` separates key from value."""
    assert parse_dotenv("db_url=postgres://h/db?sslmode=require&x=y") == {
        "db_url": "postgres://h/db?sslmode=require&x=y"
    }


def test_unquoted_value_is_trimmed_and_ends_at_an_inline_comment() -> None:
    """An unquoted value is stripped and a `` #`` starts a comment, but a ``#`` inside a word does not."""
    assert parse_dotenv("A =  spaced value   # note\nB=a#b") == {"A": "spaced value", "B": "a#b"}


def test_double_quotes_understand_escapes_and_span_lines() -> None:
    """Double-quoted values decode ``\\n \\t \\" \\\\`` and may continue on following lines."""
    text = 'A="line1\\nline2\\t\\"q\\" \\\\"\nB="first\nsecond" # trailing comment\n'
    assert parse_dotenv(text) == {"A": 'line1\nline2\t"q" \\', "B": "first\nsecond"}


def test_single_quotes_are_literal() -> None:
    """Single-quoted values keep backslashes, ``#`` and ``$`` exactly."""
    assert parse_dotenv("A='a\\nb # not a comment $HOME'") == {"A": "a\\nb # not a comment $HOME"}


def test_empty_values() -> None:
    """``A=``, ``A=""`` and ``A=''`` are all the empty string."""
    assert parse_dotenv("A=\nB=\"\"\nC=''") == {"A": "", "B": "", "C": ""}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("JUSTAWORD", "line 1: expected KEY=VALUE"),
        ("ok=1\n1bad=2", "line 2"),
        ('A="never closed\nB=2', "unterminated"),
        ('A="x" junk', "after the closing quote"),
    ],
)
def test_malformed_lines_name_the_line_never_the_value(text: str, problem: str) -> None:
    """A malformed file raises DotenvError naming the line, without quoting any value."""
    with pytest.raises(DotenvError, match=problem) as info:
        parse_dotenv(text, name="app.env")
    assert "app.env" in str(info.value)
    assert "never closed" not in str(info.value)


def test_json_values_stringify_numbers_booleans_and_structures() -> None:
    """A JSON object's non-string values become their compact JSON text."""
    values = parse_json_values('{"a": "x", "n": 5, "b": true, "o": {"k": [1, 2]}}')
    assert values == {"a": "x", "n": "5", "b": "true", "o": '{"k":[1,2]}'}


@pytest.mark.parametrize("text", ["[1, 2]", '{"a": null}', "{not json"])
def test_json_that_is_not_an_object_of_values_is_rejected(text: str) -> None:
    """Arrays, nulls and invalid JSON raise DotenvError."""
    with pytest.raises(DotenvError):
        parse_json_values(text)


def test_load_values_picks_the_format_by_name_or_content() -> None:
    """A ``.json`` name or a leading ``{`` means JSON; anything else is .env."""
    assert load_values('{"a": "1"}', name="x.env") == {"a": "1"}
    assert load_values("a=1", name="values.txt") == {"a": "1"}


def test_format_rejects_keys_a_dotenv_file_cannot_hold() -> None:
    """A key with spaces cannot be written as .env (use JSON)."""
    with pytest.raises(DotenvError, match="--format json"):
        format_dotenv({"bad key": "v"})


_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-/]{0,12}", fullmatch=True).filter(lambda k: key_refusal(k) is None)


@given(st.dictionaries(_keys, st.text(), max_size=8))
@example({"A": "-----BEGIN"})  # bare-safe characters, but an unquoted PEM opening the parser refuses
def test_format_then_parse_round_trips_any_text(values: dict[str, str]) -> None:
    """Whatever ``format_dotenv`` writes, ``parse_dotenv`` reads back exactly (newlines, quotes, unicode)."""
    assert parse_dotenv(format_dotenv(values)) == values


def test_a_leading_byte_order_mark_is_ignored() -> None:
    """A UTF-8 BOM that some editors write before the first key is not part of it (.env and JSON)."""
    assert parse_dotenv("\ufeffA=1\nB=2") == {"A": "1", "B": "2"}
    assert load_values('\ufeff{"a": "1"}', name="x.json") == {"a": "1"}


def test_a_pem_block_in_double_quotes_is_one_value() -> None:
    """A PEM block spans lines when quoted, and one that opens and closes on its line needs no quotes."""
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQ+/AB==\n-----END PRIVATE KEY-----"
    assert parse_dotenv(f'KEY="{pem}"\nNEXT=1') == {"KEY": pem, "NEXT": "1"}
    assert parse_dotenv("ONE=-----BEGIN X-----abc-----END X-----") == {"ONE": "-----BEGIN X-----abc-----END X-----"}


def test_entries_know_their_line_and_column() -> None:
    """load_entries gives each key's line and column (the CLI names them when a store refuses an entry)."""
    entries = load_entries('# c\n  export A=1\nB="x\ny"\nC=3', name="x.env")
    assert [(e.key, e.line, e.column) for e in entries.values()] == [("A", 2, 10), ("B", 3, 1), ("C", 5, 1)]
    entries = load_entries('{\n  "a": 1,\n  "b": {"c": null}\n}', name="x.json")
    assert [(e.key, e.value, e.line, e.column) for e in entries.values()] == [
        ("a", "1", 2, 3),
        ("b", '{"c":null}', 3, 3),
    ]


# --- python-dotenv's parser underneath, confstage's checks on top ------------------------------------------


def test_a_bare_key_is_an_error_not_an_unset_key() -> None:
    """python-dotenv reads a line ``KEY`` as a key without a value; here it is an error naming the line."""
    with pytest.raises(DotenvError, match=r"^app.env, line 2: expected KEY=VALUE$"):
        parse_dotenv("A=1\nB\nC=3", name="app.env")


def test_a_comment_after_an_empty_value_is_a_comment() -> None:
    """``KEY= # note`` is empty (python-dotenv); ``KEY=#x`` keeps its ``#``."""
    assert parse_dotenv("A= # note\nB=#x") == {"A": "", "B": "#x"}


def test_escapes_are_python_dotenvs() -> None:
    """Double quotes also decode ``\\'``; single quotes decode only ``\\'`` and ``\\\\`` (python-dotenv's rules)."""
    assert parse_dotenv('A="it\\\'s"') == {"A": "it's"}
    assert parse_dotenv("B='it\\'s'\nC='a\\\\b'") == {"B": "it's", "C": "a\\b"}


def test_crlf_and_export_and_quoted_values_spanning_lines() -> None:
    """Windows line ends, ``export`` and a quoted value over two lines, with each key's line and column."""
    entries = load_entries('export A=1\r\n  B="x\r\ny"\r\nC=3\r\n', name="x.env")
    assert [(e.key, e.value, e.line, e.column) for e in entries.values()] == [
        ("A", "1", 1, 8),
        ("B", "x\ny", 2, 3),
        ("C", "3", 4, 1),
    ]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("A=1\nbad key=v", "line 2, column 4", "not a valid key"),
        ("=v", "line 1, column 1", "not a valid key"),
        ("a.b!=v", "line 1, column 4", "not a valid key"),
        ("A='never closed", "line 1, column 3", "unterminated single quote"),
        ('A="x\ny" tail', "line 2, column 4", "unexpected text after the closing quote"),
        ("just words", "line 1", "expected KEY=VALUE"),
    ],
)
def test_what_python_dotenv_cannot_read_is_named_by_line_and_column(text: str, where: str, problem: str) -> None:
    """A line python-dotenv refuses is diagnosed: where, and what is wrong, never what it holds."""
    with pytest.raises(DotenvError) as info:
        parse_dotenv(text, name="app.env")
    assert f"app.env, {where}: {problem}" in str(info.value)
    assert "never closed" not in str(info.value)
    assert "tail" not in str(info.value)


@given(st.text(max_size=80))
def test_any_text_is_read_or_refused_with_a_dotenv_error(text: str) -> None:
    """Whatever the text, the reader returns entries or raises DotenvError: never another exception."""
    try:
        entries = list(dotenv_entries(text, name="x.env"))
    except DotenvError:
        return
    for entry in entries:
        assert key_refusal(entry.key) is None
        assert entry.line >= 1
        assert entry.column >= 1
