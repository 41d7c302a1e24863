"""``confstage.settings(cls)``: typed settings from dataclasses and pydantic models, one error for every bad field."""

from __future__ import annotations

import dataclasses
import enum
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

import confstage
from confstage import Config, ConfigurationError, Secret, SettingsError
from confstage.testing import MemorySource, lambda_context, override_settings

from .conftest import FakeClock, create_stage_key_table

PASSWORD = "pa55w0rd-never-printed"


class Mode(enum.Enum):
    FAST = "fast"
    SAFE = "safe"


@dataclass(frozen=True)
class AppSettings:
    db_url: str
    port: int
    db_password: Secret
    ratio: float = 0.5
    debug: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    hosts: list[str] | None = None
    mode: Mode = Mode.SAFE
    level: Literal["DEBUG", "INFO"] = "INFO"
    timeout_ms: int = field(default=1500, metadata={"key": "timeouts/ms"})


GOOD = {
    "db_url": "postgres://db",
    "port": "5432",
    "db_password": PASSWORD,
    "ratio": "0.25",
    "debug": "yes",
    "limits": '{"rps": 10}',
    "hosts": '["a", "b"]',
    "mode": "fast",
    "level": "DEBUG",
    "timeouts/ms": "900",
}


@pytest.fixture(name="source")
def fixture_source() -> MemorySource:
    return MemorySource({"PRD": dict(GOOD)})


@pytest.fixture(name="config")
def fixture_config(source: MemorySource, clock: FakeClock) -> Config:
    return confstage.configure(sources=[source], stage="PRD", cache_dir="", clock=clock, ttl=60)


def test_a_dataclass_is_filled_with_every_conversion(config: Config) -> None:
    """Each field gets its key's value, converted as the typed getters convert; metadata keys apply."""
    got = confstage.settings(AppSettings)
    assert got == AppSettings(
        db_url="postgres://db",
        port=5432,
        db_password=Secret(PASSWORD),
        ratio=0.25,
        debug=True,
        limits={"rps": 10},
        hosts=["a", "b"],
        mode=Mode.FAST,
        level="DEBUG",
        timeout_ms=900,
    )
    assert isinstance(got.db_password, Secret)
    assert got.db_password.reveal() == PASSWORD


def test_defaults_and_optional_fields_apply_when_keys_are_absent(source: MemorySource, config: Config) -> None:
    """Absent keys take the field default, or None for X | None."""
    source.values["PRD"] = {"db_url": "u", "port": "1", "db_password": "p"}
    got = confstage.settings(AppSettings)
    assert (got.ratio, got.debug, got.limits, got.hosts, got.mode, got.timeout_ms) == (
        0.5,
        False,
        {},
        None,
        Mode.SAFE,
        1500,
    )


def test_one_error_names_every_bad_field_and_no_value(source: MemorySource, config: Config) -> None:
    """Every missing or invalid field is listed in one SettingsError (a ValueError), with its type, never a value."""
    source.values["PRD"] = {
        "db_url": "u",
        "port": f"not-a-port-{PASSWORD}",
        "debug": f"maybe-{PASSWORD}",
        "limits": f'["{PASSWORD}"]',
        "mode": PASSWORD,
        "timeouts/ms": "1.5",
    }
    with pytest.raises(SettingsError) as info:
        confstage.settings(AppSettings)
    error = info.value
    assert isinstance(error, ValueError)
    text = str(error)
    for expected in (
        "field 'port' is not a valid int",
        "field 'db_password' is missing (expected str (secret))",
        "field 'debug' is not a valid bool",
        "field 'limits' is not a valid JSON object",
        "field 'mode' is not a valid Mode",
        "field 'timeout_ms' (key 'timeouts/ms') is not a valid int",
    ):
        assert expected in text
    assert len(error.problems) == 6
    assert PASSWORD not in text
    assert PASSWORD not in repr(error)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_the_same_object_within_an_invocation_and_a_new_one_after_a_refresh(
    source: MemorySource, config: Config, clock: FakeClock
) -> None:
    """Inside an invocation settings() is one object (a dict lookup); after the TTL a new one is built."""
    seen: list[AppSettings] = []

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> None:
        first = confstage.settings(AppSettings)
        if not seen:  # the first invocation: the value changes and the TTL passes under it
            source.values["PRD"]["port"] = "6543"
            clock.tick(61)
        assert confstage.settings(AppSettings) is first
        seen.append(first)

    lambda_handler({}, lambda_context("PRD"))
    lambda_handler({}, lambda_context("PRD"))
    assert seen[0].port == 5432
    assert seen[1].port == 6543
    with confstage.bind("PRD"):
        assert confstage.settings(AppSettings) is seen[1]  # the same snapshot: the same object


def test_settings_from_two_sources_at_once() -> None:
    """Fields resolve through the chain: each key from the first source that holds it."""
    env_like = MemorySource({"PRD": {"port": "8080", "db_url": "from-first"}}, url="memory://first")
    store = MemorySource({"PRD": dict(GOOD)}, url="memory://second")
    config = Config([env_like, store], stage="PRD", cache_dir="")
    got = config.settings(AppSettings)
    assert (got.port, got.db_url, got.ratio) == (8080, "from-first", 0.25)


@dataclass(frozen=True)
class ServiceSettings:
    db_url: str
    db_password: Secret
    pool_size: int
    flags: dict[str, bool]
    timeout_s: float = 2.5


@pytest.mark.integration
def test_settings_from_two_sources_over_http(boto: Any) -> None:
    """SSM (SecureString included) and a DynamoDB stage table on the local endpoint fill one object in one load each."""
    ssm = boto("ssm")
    ssm.put_parameter(Name="/svc/PRD/db_url", Value="postgres://prd-db/svc", Type="String")
    ssm.put_parameter(Name="/svc/PRD/db_password", Value=PASSWORD, Type="SecureString")
    ddb = boto("dynamodb")
    create_stage_key_table(ddb, "svc")
    for key, value in {"pool_size": "20", "flags": '{"beta": true}', "db_url": "shadowed"}.items():
        ddb.put_item(TableName="svc", Item={"stage": {"S": "PRD"}, "key": {"S": key}, "value": {"S": value}})
    config = Config(["ssm:///svc", "dynamodb://svc"], stage="PRD", cache_dir="")

    @confstage.handler(config=config)
    def handler(event: Any, context: Any) -> ServiceSettings:
        return confstage.settings(ServiceSettings)

    got = handler({}, lambda_context("PRD"))
    assert (got.db_url, got.pool_size, got.flags, got.timeout_s) == ("postgres://prd-db/svc", 20, {"beta": True}, 2.5)
    assert got.db_password == PASSWORD
    assert PASSWORD not in repr(got)
    assert [s["fetches"] for s in config.stats()["sources"].values()] == [1, 1]


def test_secret_masks_printing_but_reads_as_its_value() -> None:
    """Secret's repr, str and formatting are masked; it still compares, concatenates and encodes as the value."""
    secret = Secret(PASSWORD)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret:>30}", f"{secret!r}", "%s" % (secret,)):  # noqa: UP031
        assert PASSWORD not in shown
    assert secret == PASSWORD
    assert "x" + secret == "x" + PASSWORD
    assert secret.encode() == PASSWORD.encode()
    assert type(secret.reveal()) is str
    assert secret.get_secret_value() == PASSWORD


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [(set, "not supported"), ("int | str", "only X | None"), (Literal[1, 2], "Literal")],
)
def test_unsupported_field_types_fail_when_the_class_is_first_used(annotation: Any, problem: str) -> None:
    """A field type settings() cannot fill is a ConfigurationError naming the class and field."""
    cls = dataclasses.make_dataclass("Bad", [("x", annotation)])
    config = Config([MemorySource({"PRD": {"x": "1"}})], stage="PRD", cache_dir="")
    with pytest.raises(ConfigurationError, match=f"Bad.x.*{problem}"):
        config.settings(cls)


def test_not_a_settings_class_is_a_type_error(config: Config) -> None:
    """settings() of something that is not a dataclass or pydantic model says so."""
    with pytest.raises(TypeError, match="dataclass or a pydantic"):
        confstage.settings(dict)
    with pytest.raises(TypeError, match="takes a class"):
        confstage.settings(AppSettings() if False else "AppSettings")  # type: ignore[arg-type]


def test_a_field_key_outside_the_rule_is_refused() -> None:
    """metadata={"key": "../x"} is a ConfigurationError, not a read outside the stage."""

    @dataclass
    class Escaping:
        x: str = field(metadata={"key": "../PRD/x"})

    with pytest.raises(ConfigurationError, match="not a valid key name"):
        Config([MemorySource({"DEV": {}})], stage="DEV", cache_dir="").settings(Escaping)


def test_the_test_kit_overrides_settings(config: Config) -> None:
    """override_settings makes confstage.settings return the given object, and restores afterwards."""
    fake = AppSettings(db_url="sqlite://", port=1, db_password=Secret("x"))
    with override_settings(fake):
        assert confstage.settings(AppSettings) is fake
    assert confstage.settings(AppSettings).port == 5432


# -- pydantic ---------------------------------------------------------------------------------------

pydantic = pytest.importorskip("pydantic")


class PydanticSettings(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    db_url: str
    port: int
    password: pydantic.SecretStr = pydantic.Field(alias="db_password")  # type: ignore[name-defined]
    token: Secret | None = None
    ratio: float = 0.5


def test_a_pydantic_model_is_validated_by_pydantic(source: MemorySource, config: Config) -> None:
    """A pydantic v2 model gets its fields by name or alias; SecretStr and Secret work as declared."""
    source.values["PRD"]["token"] = "tok"
    got = confstage.settings(PydanticSettings)
    assert (got.db_url, got.port, got.ratio) == ("postgres://db", 5432, 0.25)
    assert got.password.get_secret_value() == PASSWORD
    assert isinstance(got.token, Secret)
    assert PASSWORD not in repr(got)


def test_pydantic_errors_name_fields_never_values(source: MemorySource, config: Config) -> None:
    """pydantic's ValidationError becomes one SettingsError without pydantic's quoted input."""
    source.values["PRD"] = {"port": f"x-{PASSWORD}", "db_password": PASSWORD}
    with pytest.raises(SettingsError) as info:
        confstage.settings(PydanticSettings)
    text = str(info.value)
    assert "field 'db_url' is missing" in text
    assert "field 'port' is not a valid int" in text
    assert PASSWORD not in text
    assert info.value.__cause__ is None


def test_pydantic_is_never_imported_for_dataclasses() -> None:
    """Building dataclass settings in a fresh process leaves pydantic unimported."""
    script = textwrap.dedent(
        """
        import json, sys
        from dataclasses import dataclass
        import confstage
        from confstage.testing import MemorySource

        @dataclass
        class S:
            port: int
            name: str = "x"

        config = confstage.Config([MemorySource({"DEV": {"port": "1"}})], stage="DEV", cache_dir="")
        assert config.settings(S) == S(port=1)
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "pydantic_core"))))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
