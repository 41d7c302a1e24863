"""``file://PATH``: JSON, TOML and ``.env`` files per stage, re-read when they change, written by the CLI's ``put``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from confstage import Config
from confstage.errors import ConfigurationError, SourceError
from confstage.sources import build_source
from confstage.sources.file import FileSource
from confstage.stores import build_store
from confstage.stores.file import FileStore
from confstage.testing import MemorySource

from ._cli import invoke
from .conftest import FakeClock

SECRET = "hunter2-never-shown"

DOCUMENTS = {
    "json": '{"db_url": "postgres://db", "port": 5432, "debug": true, "limits": {"rps": 100}}',
    "toml": '# DEV\ndb_url = "postgres://db"\nport = 5432\ndebug = true\n\n[limits]\nrps = 100\n',
    "env": "# DEV\nexport db_url=postgres://db\nport=5432\ndebug=true\nlimits='{\"rps\":100}'\n",
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def file_source(tmp_path: Path, name: str) -> FileSource:
    source = build_source(f"file://{tmp_path}/{name}")
    assert isinstance(source, FileSource)
    return source


@pytest.mark.parametrize("fmt", sorted(DOCUMENTS))
def test_each_format_is_a_stage_and_non_string_values_are_json_text(tmp_path: Path, fmt: str) -> None:
    """A JSON object, a TOML table and a .env file give the same values; numbers, booleans, tables as JSON text."""
    write(tmp_path / f"dev.{fmt}", DOCUMENTS[fmt])
    values = dict(file_source(tmp_path, f"{{stage}}.{fmt}").fetch("DEV", ()))
    assert values == {"db_url": "postgres://db", "port": "5432", "debug": "true", "limits": '{"rps":100}'}


def test_stage_in_the_path_lowercased_or_as_it_is(tmp_path: Path) -> None:
    """``{stage}`` is the stage lowercased (as env://'s template), ``{STAGE}`` the stage as it is."""
    write(tmp_path / "prd.json", '{"k": "lower"}')
    write(tmp_path / "PRD" / "config.json", '{"k": "upper"}')
    assert file_source(tmp_path, "{stage}.json").fetch("PRD", ())["k"] == "lower"
    assert file_source(tmp_path, "{STAGE}/config.json").fetch("PRD", ())["k"] == "upper"


def test_a_relative_path_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``file://config/{stage}.json`` reads ``./config/dev.json`` (in Lambda: the package root, /var/task)."""
    write(tmp_path / "config" / "dev.json", '{"k": "v"}')
    monkeypatch.chdir(tmp_path)
    source = build_source("file://config/{stage}.json")
    monkeypatch.chdir("/")  # resolved when the source is built
    assert source.fetch("DEV", ()) == {"k": "v"}


def test_a_missing_file_is_not_found_and_the_next_source_answers(tmp_path: Path) -> None:
    """No file for the stage: the file source holds nothing, the next source of the chain answers."""
    write(tmp_path / "dev.json", '{"k": "from file"}')
    memory = MemorySource({"DEV": {"k": "memory", "other": "x"}, "PRD": {"k": "memory"}})
    config = Config([f"file://{tmp_path}/{{stage}}.json", memory], cache_dir="")
    assert config.get("k", stage="DEV") == "from file"
    assert config.get("other", stage="DEV") == "x"
    assert config.get("k", stage="PRD") == "memory"


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        ("json", '{\n  "a": "x",\n  "password": "' + SECRET + '"\n  "b": 1\n}', 4),
        ("toml", 'a = "x"\npassword = "' + SECRET + "\nb = 1\n", 2),
        ("env", "A=x\nB=y\n" + SECRET + " pasted\n", 3),
    ],
)
def test_a_malformed_file_names_the_file_and_the_line_never_its_content(
    tmp_path: Path, fmt: str, text: str, line: int
) -> None:
    """A file that does not parse is a SourceError with its path and line, no cause holding the text."""
    path = write(tmp_path / f"dev.{fmt}", text)
    with pytest.raises(SourceError) as caught:
        file_source(tmp_path, f"dev.{fmt}").fetch("DEV", ())
    message = str(caught.value)
    assert f"{path}, line {line}" in message
    assert SECRET not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_a_json_array_or_bad_utf8_is_refused_with_the_line(tmp_path: Path) -> None:
    """A JSON document that is not an object, and bytes that are not UTF-8, are SourceErrors naming the file."""
    write(tmp_path / "dev.json", '["a"]')
    with pytest.raises(SourceError, match="object of keys, not a JSON array"):
        file_source(tmp_path, "dev.json").fetch("DEV", ())
    (tmp_path / "x.env").write_bytes(b"A=1\nB=\xff\n")
    with pytest.raises(SourceError, match=r"x\.env, line 2: not UTF-8"):
        file_source(tmp_path, "x.env").fetch("DEV", ())


def test_an_unreadable_path_is_a_source_error_not_a_missing_file(tmp_path: Path) -> None:
    """A path that exists but cannot be read (here a directory) fails: it never falls through to the next source."""
    (tmp_path / "dev.json").mkdir()
    config = Config([f"file://{tmp_path}/{{stage}}.json", MemorySource({"DEV": {"k": "v"}})], cache_dir="")
    with pytest.raises(SourceError, match="cannot read"):
        config.get("k", stage="DEV")


def test_an_edit_is_seen_on_the_next_read_and_an_unchanged_file_is_not_parsed_again(tmp_path: Path) -> None:
    """Each fetch stats the file: same inode, mtime and size → the same parse; a change → parsed again."""
    path = write(tmp_path / "dev.json", '{"k": "one"}')
    source = file_source(tmp_path, "dev.json")
    first = source.fetch("DEV", ())
    assert source.fetch("DEV", ()) is first
    path.write_text('{"k": "two"}', encoding="utf-8")  # same size, in place
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    assert source.fetch("DEV", ())["k"] == "two"


def test_inside_an_invocation_the_snapshot_holds_and_between_reads_an_edit_shows(tmp_path: Path) -> None:
    """The default TTL is 0: outside a handler an edit shows at once; within one bind() the values do not move."""
    path = write(tmp_path / "dev.json", '{"k": "one"}')
    clock = FakeClock()
    config = Config(f"file://{tmp_path}/dev.json", stage="DEV", cache_dir="", clock=clock)
    with config.bind("DEV"):
        assert config.get("k") == "one"
        path.write_text('{"k": "changed"}', encoding="utf-8")
        clock.tick(1)
        assert config.get("k") == "one"
    clock.tick(1)
    assert config.get("k") == "changed"


def test_ttl_parameter_reads_the_file_less_often(tmp_path: Path) -> None:
    """``?ttl=60``: the file is looked at again only after a minute, as any source."""
    path = write(tmp_path / "dev.json", '{"k": "one"}')
    clock = FakeClock()
    config = Config(f"file://{tmp_path}/dev.json?ttl=60", stage="DEV", cache_dir="", clock=clock)
    assert config.get("k") == "one"
    path.write_text('{"k": "changed"}', encoding="utf-8")
    clock.tick(30)
    assert config.get("k") == "one"
    clock.tick(31)
    assert config.get("k") == "changed"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file://", "needs a path"),
        ("file://config/{stage}.yaml", "cannot tell the format"),
        ("file://config/{stage}.cfg?format=ini", "parameter 'format'"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, problem: str) -> None:
    """A file URL without a path, with an unknown suffix or format, is refused when the chain is built."""
    with pytest.raises(ConfigurationError, match=problem):
        build_source(url)


def test_format_parameter_reads_any_name(tmp_path: Path) -> None:
    """``?format=env`` reads a file whose name says nothing (``settings.local``)."""
    write(tmp_path / "settings.local", "A=1\n")
    assert build_source(f"file://{tmp_path}/settings.local?format=env").fetch("DEV", ()) == {"A": "1"}


# -- writing: the store ---------------------------------------------------------------------------


def file_store(url: str) -> FileStore:
    store = build_store(url)
    assert isinstance(store, FileStore)
    return store


def test_put_to_a_dotenv_file_keeps_comments_export_and_other_lines(tmp_path: Path) -> None:
    """Only the binding written changes; comments, blank lines, ``export`` and other keys stay byte for byte."""
    text = "# DEV settings\n\nexport db_url=postgres://old  # the old one\nOTHER='keep me'\n"
    path = write(tmp_path / "dev.env", text)
    store = file_store(f"file://{tmp_path}/{{stage}}.env")
    store.put("DEV", "db_url", "postgres://new")
    store.put("DEV", "greeting", "hello, world")
    assert path.read_text() == (
        "# DEV settings\n\nexport db_url=postgres://new\nOTHER='keep me'\ngreeting=\"hello, world\"\n"
    )


def test_put_to_json_redumps_with_an_indent_and_keeps_numbers_numbers(tmp_path: Path) -> None:
    """JSON is rewritten with an indent of 2; a value replacing a number stays a number when it is one."""
    path = write(tmp_path / "dev.json", '{"port": 5432, "name": "a"}')
    store = file_store(f"file://{tmp_path}/{{stage}}.json")
    store.put("DEV", "port", "6543")
    store.put("DEV", "name", "6543")
    assert path.read_text() == '{\n  "port": 6543,\n  "name": "6543"\n}\n'


def test_put_to_toml_keeps_comments_and_tables(tmp_path: Path) -> None:
    """tomlkit rewrites only what changed: comments and tables stay; a new key goes before the first table."""
    path = write(tmp_path / "dev.toml", "# DEV\nport = 5432 # the port\n\n[limits]\nrps = 100\n")
    store = file_store(f"file://{tmp_path}/{{stage}}.toml")
    store.put("DEV", "port", "6543")
    store.put("DEV", "db_url", "postgres://db")
    assert path.read_text() == '# DEV\nport = 6543 # the port\ndb_url = "postgres://db"\n\n[limits]\nrps = 100\n'


@pytest.mark.parametrize("fmt", ["json", "toml", "env"])
def test_put_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path, fmt: str) -> None:
    """The rewrite goes through a temporary file and ``os.replace``: the mode stays, nothing is left beside it."""
    path = write(tmp_path / f"dev.{fmt}", "")
    path.chmod(0o640)
    file_store(f"file://{tmp_path}/dev.{fmt}").put("DEV", "k", "v")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"dev.{fmt}"]


def test_put_creates_the_file_and_its_directory(tmp_path: Path) -> None:
    """Writing a stage that has no file yet creates it (and the directory the path names)."""
    file_store(f"file://{tmp_path}/config/{{stage}}.json").put("PRD", "k", "v")
    assert json.loads((tmp_path / "config" / "prd.json").read_text()) == {"k": "v"}


def test_a_malformed_file_is_never_overwritten(tmp_path: Path) -> None:
    """put on a file that does not parse fails naming the line; the file is left as it was."""
    path = write(tmp_path / "dev.json", '{"a": ')
    with pytest.raises(SourceError, match="line 1"):
        file_store(f"file://{tmp_path}/dev.json").put("DEV", "k", "v")
    assert path.read_text() == '{"a": '


def test_secure_writes_versions_and_bad_env_keys_are_refused(tmp_path: Path) -> None:
    """No plaintext secret on disk, no versions to expect or roll back to, no key .env cannot read back."""
    store = file_store(f"file://{tmp_path}/dev.env")
    with pytest.raises(ConfigurationError, match="plaintext"):
        store.put("DEV", "k", SECRET, kms_key="alias/app")
    with pytest.raises(ConfigurationError, match="keeps no versions"):
        store.put("DEV", "k", "v", expect_version="3")
    with pytest.raises(ConfigurationError, match="keeps no versions"):
        store.rollback("DEV", "k", "1")
    assert store.check_write("DEV", {"a key": "v"})
    store.put("DEV", "k", "v", expect_version="0")
    with pytest.raises(ConfigurationError, match="already has k"):
        store.put("DEV", "k", "w", expect_version="0")
    assert not (tmp_path / "dev.env").read_text().count("w")


def test_delete_and_items(tmp_path: Path) -> None:
    """delete removes the key's line and says whether it was there; items lists the stage."""
    path = write(tmp_path / "dev.env", "# c\nA=1\nB=2\n")
    store = file_store(f"file://{tmp_path}/dev.env")
    assert store.delete("DEV", "A") is True
    assert store.delete("DEV", "A") is False
    assert path.read_text() == "# c\nB=2\n"
    assert {k: v.value for k, v in store.items("DEV").items()} == {"B": "2"}


VALUES = st.text(st.characters(codec="utf-8"), max_size=40)
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,15}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(["json", "toml", "env"]), values=st.dictionaries(KEYS, VALUES, max_size=5))
@example(fmt="env", values={"a": "-----BEGIN"})  # bare-safe, but the CLI's reader refuses an unquoted PEM opening
def test_what_put_writes_reads_back_unchanged(tmp_path: Path, fmt: str, values: dict[str, str]) -> None:
    """Any text, newlines, quotes, backslashes and '#' included, reads back as written in every format, by the
    source and by the CLI's reader (``confstage import``)."""
    from confstage.cli.dotenv import load_values

    path = tmp_path / f"round.{fmt}"
    path.unlink(missing_ok=True)
    store = file_store(f"file://{path}")
    store.put_many("DEV", values)
    source = FileSource(str(path))
    assert dict(source.fetch("DEV", ())) == values
    if fmt == "env" and values:  # nothing put: no file
        assert load_values(path.read_text(encoding="utf-8"), name=path.name) == values


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_put_get_list_on_a_file(tmp_path: Path) -> None:
    """``confstage put/get/list --source file://...`` read and write the stage's file with no AWS at all."""
    url = f"file://{tmp_path}/{{stage}}.env"
    write(tmp_path / "dev.env", "# local\nport=5432\n")
    result = invoke("put", "db_url", "postgres://local/app", "--source", url, "--stage", "DEV")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "dev.env").read_text() == "# local\nport=5432\ndb_url=postgres://local/app\n"
    result = invoke("get", "db_url", "--source", url, "--stage", "DEV")
    assert (result.exit_code, result.stdout) == (0, "postgres://local/app\n")
    result = invoke("list", "--source", url, "--stage", "DEV", "--output", "json")
    assert json.loads(result.stdout) == {"db_url": "postgres://local/app", "port": "5432"}


def test_cli_refuses_secure_put_to_a_file(tmp_path: Path) -> None:
    """``put --secure`` to a file is a one-line error; nothing is written."""
    result = invoke(
        "put",
        "k",
        SECRET,
        "--secure",
        "--kms-key",
        "alias/x",
        "--source",
        f"file://{tmp_path}/dev.env",
        "--stage",
        "DEV",
    )
    assert result.exit_code in (1, 2)
    assert "plaintext" in result.stderr
    assert SECRET not in result.output
    assert not (tmp_path / "dev.env").exists()
