"""``confstage check`` and ``prefetch(manifest=...)``: every required key present and valid per stage, never a value."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confstage
from confstage import Config, Secret
from confstage.cli.commands.check import command_line_stages
from confstage.manifest import CheckFailed, ManifestError, Problem, check, from_document, from_settings, load
from confstage.stores.dynamodb import DynamoDBStore
from confstage.testing import MemorySource

from ._cli import assert_one_line_error, invoke

SECRET = "pw-9f8e7d-never-shown"

MANIFEST = """\
stages = ["DEV", "PRD"]

[[keys]]
key = "db_url"
pattern = "^postgres://"
secret = true

[[keys]]
key = "port"
type = "int"

[[keys]]
key = "debug"
type = "bool"
required = false

[[keys]]
key = "limits"
type = "json"
stages = ["PRD"]
schema = {type = "object", required = ["rps"], properties = {rps = {type = "integer", minimum = 1}}}
"""


@pytest.fixture(name="project")
def fixture_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory (the working directory) with a manifest and a file:// source per stage."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "confstage.toml").write_text(MANIFEST)
    (tmp_path / "dev.env").write_text(f"db_url=mysql://app:{SECRET}@db\nport=5432\ndebug=maybe\n")
    (tmp_path / "prd.env").write_text('db_url=postgres://db\nport=5432\nlimits={"rps": 0}\n')
    monkeypatch.setenv("CONFSTAGE_SOURCES", "file://{stage}.env")
    return tmp_path


def test_each_problem_is_one_record_and_no_value_is_shown(project: Path) -> None:
    """Pattern, type, schema problems (and an optional key present but invalid) are records; exit 1; no value."""
    result = invoke("check", "--manifest", "confstage.toml", "--output", "json")
    assert result.exit_code == 1, result.stderr
    assert json.loads(result.stdout) == [
        {
            "stage": "DEV",
            "key": "db_url",
            "problem": "does not match the pattern '^postgres://'",
            "source": "file://{stage}.env",
        },
        {
            "stage": "DEV",
            "key": "debug",
            "problem": "is not a valid bool (true/false, 1/0, yes/no, on/off)",
            "source": "file://{stage}.env",
        },
        {
            "stage": "PRD",
            "key": "limits",
            "problem": "does not match its schema ('minimum' failed at schema path properties/rps/minimum)",
            "source": "file://{stage}.env",
        },
    ]
    assert SECRET not in result.output
    assert "3 problem(s)" in result.stderr


def test_a_missing_key_names_every_source_tried_and_the_table_is_the_default(project: Path) -> None:
    """A required key no source holds is 'is missing' with the chain's URLs; the table shows stage, key, problem."""
    (project / "prd.env").write_text('db_url=postgres://db\nlimits={"rps": 5}\n')
    result = invoke("check", "--manifest", "confstage.toml", "--stage", "PRD", "--source", "file://{stage}.env env://")
    assert result.exit_code == 1
    assert "port" in result.stdout
    assert "is missing" in result.stdout
    records = json.loads(invoke("check", "--manifest", "confstage.toml", "--stage", "PRD", "--output", "json").stdout)
    assert records == [{"stage": "PRD", "key": "port", "problem": "is missing", "source": "file://{stage}.env"}]


def test_all_present_and_valid_is_exit_0_and_an_empty_list(project: Path) -> None:
    """When every entry holds in every stage: exit 0, ``[]`` on stdout, a summary on stderr."""
    (project / "dev.env").write_text("db_url=postgres://dev\nport=5432\n")
    (project / "prd.env").write_text('db_url=postgres://db\nport=5432\nlimits={"rps": 5}\n')
    result = invoke("check", "--manifest", "confstage.toml", "--output", "json")
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    assert "all present and valid" in result.stderr


def test_stages_given_repeat_and_replace_the_manifests(project: Path) -> None:
    """``--stage`` repeated (before or after the command, ``=`` or not) checks exactly those stages."""
    result = invoke("--stage", "PRD", "check", "--manifest", "confstage.toml", "--stage=DEV", "--output", "json")
    assert {r["stage"] for r in json.loads(result.stdout)} == {"DEV", "PRD"}
    result = invoke("check", "--manifest", "confstage.toml", "--stage", "PRD", "--output", "json")
    assert {r["stage"] for r in json.loads(result.stdout)} == {"PRD"}


def test_command_line_stages_skips_option_values() -> None:
    """Only ``--stage`` values are stages: a ``--source`` or ``--manifest`` value that reads ``--stage`` is not."""
    args = ["--source", "--stage", "check", "--stage", "A", "--manifest", "m.toml", "--stage=B", "--", "--stage", "C"]
    assert command_line_stages(args) == ["A", "B"]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('key = "port"\ntype = "integer"', "entry 1 (key 'port'): unknown type 'integer'"),
        ('key = "port"\npattern = "(unclosed"', "entry 1 (key 'port'): malformed pattern"),
        ('key = "port"\ntype = "json"\nschema = {type = 5}', "entry 1 (key 'port'): malformed schema"),
        ('key = "port"\nrequird = false', "entry 1 (key 'port'): unknown field(s) requird"),
        ('key = "a/../b"', "entry 1: not a valid key"),
    ],
)
def test_a_bad_manifest_is_a_usage_error_naming_the_entry(project: Path, entry: str, problem: str) -> None:
    """An unknown type, a malformed pattern or schema, a misspelt field: exit 2, the entry named."""
    (project / "bad.toml").write_text(f'stages = ["DEV"]\n[[keys]]\n{entry}\n')
    line = assert_one_line_error(invoke("check", "--manifest", "bad.toml"), status=2)
    assert problem in line


def test_usage_errors(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither or both of --manifest/--settings, a bad stage, no stage at all: exit 2."""
    assert invoke("check").exit_code == 2
    assert invoke("check", "--manifest", "confstage.toml", "--settings", "m:C").exit_code == 2
    assert invoke("check", "--manifest", "confstage.toml", "--stage", "a/b").exit_code == 2
    (project / "nostages.json").write_text('{"keys": [{"key": "port", "type": "int"}]}')
    assert invoke("check", "--manifest", "nostages.json").exit_code == 2
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")  # the stage of every other command, when nothing else names one
    assert invoke("check", "--manifest", "nostages.json").exit_code == 0


def test_settings_class_from_the_working_directory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--settings app_settings:Settings``: fields without a default are required, each converted as settings()."""
    (project / "app_settings.py").write_text(
        "from dataclasses import dataclass, field\nfrom confstage import Secret\n\n"
        "@dataclass\nclass Settings:\n    db_url: Secret\n    port: int\n    timeout: float = 1.0\n"
        "    region: str = field(default='eu-west-1', metadata={'key': 'aws_region'})\n"
    )
    monkeypatch.syspath_prepend(str(project))
    (project / "dev.env").write_text(f"db_url={SECRET}\nport=http\n")
    result = invoke(
        "check", "--settings", "app_settings:Settings", "--stage", "DEV", "--stage", "PRD", "--output", "json"
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == [
        {"stage": "DEV", "key": "port", "problem": "is not a valid int", "source": "file://{stage}.env"}
    ]
    assert SECRET not in result.output
    sys.modules.pop("app_settings", None)
    assert_one_line_error(invoke("check", "--settings", "no_such_module:X", "--stage", "DEV"), status=2)


def test_a_failing_source_is_a_problem_of_its_stage(project: Path) -> None:
    """A source that fails (a file that does not parse) is one record with no key: the stage cannot be judged."""
    (project / "dev.env").write_text(f"{SECRET} pasted by mistake\n")
    result = invoke("check", "--manifest", "confstage.toml", "--stage", "DEV", "--output", "json")
    assert result.exit_code == 1
    [record] = json.loads(result.stdout)
    assert (record["stage"], record["key"]) == ("DEV", "")
    assert "dev.env, line 1" in record["problem"]
    assert SECRET not in result.output


VALUES = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "\x00" not in s)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES, kind=st.sampled_from(["int", "float", "bool", "json"]), pattern=st.sampled_from(["^x", "\\d{3}$"]))
def test_problems_never_quote_the_value(value: str, kind: str, pattern: str) -> None:
    """Whatever the value and however it fails (type, pattern), the problem text does not contain it."""
    manifest = from_document({"keys": [{"key": "k", "type": kind, "pattern": pattern}]}, "generated")
    config = Config([MemorySource({"DEV": {"k": value}})], cache_dir="")
    for problem in check(config, manifest, ["DEV"]):
        if len(value) > 3:  # a value of a few characters can be a word of any message
            assert value not in problem.problem


def test_manifest_file_in_json_and_load_dispatch(tmp_path: Path) -> None:
    """A JSON manifest reads as the TOML one; load() takes a path, a class or a Manifest."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"stages": ["DEV"], "keys": [{"key": "port", "type": "int"}]}))
    manifest = load(str(path))
    assert [e.key for e in manifest.entries] == ["port"]
    assert manifest.stages == ("DEV",)
    assert load(manifest) is manifest
    with pytest.raises(ManifestError, match="name it"):
        load(str(tmp_path / "m.yaml"))


# -- prefetch(manifest=...) -------------------------------------------------------------------------------


@dataclass
class AppSettings:
    db_url: Secret
    port: int
    pool: int = 5
    tags: list[str] = field(default_factory=list)


def test_prefetch_with_a_manifest_raises_one_error_naming_every_problem(project: Path) -> None:
    """At init, ``prefetch(manifest=...)`` fails once, listing every key missing or invalid in the stage."""
    confstage.configure("file://{stage}.env", stage="DEV", cache_dir="")
    with pytest.raises(CheckFailed) as caught:
        confstage.prefetch(manifest="confstage.toml")
    assert caught.value.records == (
        Problem("DEV", "db_url", "does not match the pattern '^postgres://'", "file://{stage}.env"),
        Problem("DEV", "debug", "is not a valid bool (true/false, 1/0, yes/no, on/off)", "file://{stage}.env"),
    )
    assert "2 problems" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_prefetch_with_a_settings_class(project: Path) -> None:
    """A settings class is a manifest too: required fields missing or invalid fail prefetch; defaults are optional."""
    config = Config(
        [MemorySource({"DEV": {"db_url": "x", "port": "80", "tags": "[]"}, "PRD": {"port": "x"}})], cache_dir=""
    )
    assert config.prefetch(stage="DEV", manifest=AppSettings) == {}
    with pytest.raises(CheckFailed, match=r"db_url is missing.*port is not a valid int"):
        config.prefetch(stage="PRD", manifest=AppSettings)
    assert [e.required for e in from_settings(AppSettings).entries] == [True, True, False, False]


# -- one fetch per stage and source, whatever the number of keys --------------------------------------------


@pytest.mark.integration
def test_keys_in_3_stages_cost_one_query_per_stage(
    table: DynamoDBStore, requests_made: Counter[str], tmp_path: Path
) -> None:
    """check over 200 keys x 3 stages against DynamoDB on the local endpoint: 3 Query requests, no more.

    (500 keys x 3 stages: benchmarks/check_scale.py, the figure in docs/cli.md; fewer here to keep the suite fast.)
    """
    keys = [f"key_{i:03d}" for i in range(200)]
    for stage in ("DEV", "TST", "PRD"):
        table.put_many(stage, {key: str(i) for i, key in enumerate(keys)})
    manifest = tmp_path / "big.json"
    manifest.write_text(json.dumps({"keys": [{"key": key, "type": "int"} for key in keys]}))
    requests_made.clear()
    result = invoke(
        "check",
        "--manifest",
        str(manifest),
        "--stage",
        "DEV",
        "--stage",
        "TST",
        "--stage",
        "PRD",
        "--source",
        table.url,
    )
    assert result.exit_code == 0, result.stderr
    assert dict(requests_made) == {"dynamodb.Query": 3}


def test_a_pydantic_model_is_a_manifest() -> None:
    """A pydantic model's fields (by alias) are entries: required unless defaulted, validated by pydantic."""
    from pydantic import BaseModel, Field

    class Model(BaseModel):
        url: str = Field(alias="db_url")
        port: int
        pool: int = 5

    manifest = from_settings(Model)
    assert [(e.key, e.required) for e in manifest.entries] == [("db_url", True), ("port", True), ("pool", False)]
    config = Config([MemorySource({"DEV": {"port": "eighty", "pool": "7"}})], cache_dir="")
    assert [(p.key, p.problem) for p in check(config, manifest, ["DEV"])] == [
        ("db_url", "is missing"),
        ("port", "is not a valid int"),
    ]
