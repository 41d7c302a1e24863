"""Every numeric setting is finite and inside its documented range, or refused up front naming the variable.

A setting of ``inf`` (or ``1e400``) used to be accepted and then fail every cold read with ``OverflowError``
from ``Event.wait``; these tests draw settings from a strategy of floats and strings and check that each one is
either refused when the client or transport is made, or read without error.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from confstage import Config, ConfigurationError
from confstage.testing import MemorySource
from confstage.transport.lite.transport import Settings as LiteSettings
from confstage.variables import NUMBERS, check_number

# Config's numeric arguments and the variable each one stands for.
ARGUMENTS = {
    "ttl": "CONFSTAGE_TTL",
    "max_stale": "CONFSTAGE_MAX_STALE",
    "secret_max_stale": "CONFSTAGE_SECRET_MAX_STALE",
    "fetch_timeout": "CONFSTAGE_FETCH_TIMEOUT",
    "refresh_timeout": "CONFSTAGE_REFRESH_TIMEOUT",
    "ttl_jitter": "CONFSTAGE_TTL_JITTER",
}
CLIENT_VARIABLES = sorted(ARGUMENTS.values())
TRANSPORT_VARIABLES = ["CONFSTAGE_CONNECT_TIMEOUT", "CONFSTAGE_MAX_ATTEMPTS", "CONFSTAGE_READ_TIMEOUT"]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, 1, 0.5, 900, 901, 1e400, -1e400, 365 * 24 * 3600, 365 * 24 * 3600 + 1]),
)
texts = st.one_of(
    numbers.map(str),
    st.sampled_from(["inf", "-inf", "nan", "Infinity", "1e400", "1_000", " 5 ", "", "0x10", "soon", "١٢"]),
    st.text(max_size=6),
)


def make(**given: Any) -> Config:
    """A client over a memory source, with ``given`` numeric arguments (typed loosely: the test gives bad ones)."""
    return Config([MemorySource({"DEV": {"k": "v"}})], stage="DEV", cache_dir="", **given)


def accepted(variable: str, value: float | str) -> bool:
    """What the documented range says of a value (the oracle, written apart from ``check_number``)."""
    rule = NUMBERS[variable]
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return False
    return math.isfinite(number) and rule.low <= number <= rule.high and (not rule.integer or number.is_integer())


def test_every_variable_has_a_documented_range() -> None:
    """docs/configuration.md states each numeric variable's range, as NUMBERS has it."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    for variable, rule in NUMBERS.items():
        assert variable in text
        assert rule.span.split(" from ")[1] in text.split(f"`{variable}`", 1)[1].split("\n", 1)[0], variable


@pytest.mark.parametrize("variable", CLIENT_VARIABLES)
@pytest.mark.parametrize("raw", ["inf", "1e400", "-inf", "nan", "-1"])
def test_an_infinite_or_negative_setting_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    """CONFSTAGE_FETCH_TIMEOUT=inf (the reproduced defect) and its kind: refused when the client is made."""
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as info:
        Config(stage="DEV", cache_dir="")
    rule = NUMBERS[variable]
    assert variable in str(info.value)
    assert rule.span in str(info.value)


@settings(max_examples=150, deadline=None)
@given(variable=st.sampled_from(CLIENT_VARIABLES), raw=texts)
@example(variable="CONFSTAGE_FETCH_TIMEOUT", raw=" ")  # blank: the default, once the oracle strips it too
def test_client_variables_are_in_range_or_refused(variable: str, raw: str) -> None:
    """A variable drawn from floats and strings: refused naming itself, or a client whose cold read works."""
    environ = {variable: raw}
    expect = accepted(variable, raw.strip()) if raw.strip() else True  # blank: the default
    if not expect:
        with pytest.raises(ConfigurationError, match=variable):
            Config([MemorySource({"DEV": {"k": "v"}})], stage="DEV", cache_dir="", environ=environ)
        return
    client = Config([MemorySource({"DEV": {"k": "v"}})], stage="DEV", cache_dir="", environ=environ)
    if variable == "CONFSTAGE_FETCH_TIMEOUT" and float(raw.strip() or 1) == 0:
        return  # nobody waits for a fetch: a cold read may fail, but never with OverflowError
    assert client.get("k") == "v"


@settings(max_examples=150, deadline=None)
@given(argument=st.sampled_from(sorted(ARGUMENTS)), value=numbers)
def test_config_arguments_are_in_range_or_refused(argument: str, value: float) -> None:
    """Config(fetch_timeout=inf) and the like: refused naming the argument and the range, never OverflowError."""
    variable = ARGUMENTS[argument]
    if not accepted(variable, value):
        with pytest.raises(ConfigurationError) as info:
            make(**{argument: value})
        assert f"Config({argument}=...)" in str(info.value)
        return
    client = make(**{argument: value})
    if argument != "fetch_timeout" or value != 0:
        assert client.get("k") == "v"


@settings(max_examples=100, deadline=None)
@given(variable=st.sampled_from(TRANSPORT_VARIABLES), raw=texts)
def test_transport_variables_are_in_range_or_refused(variable: str, raw: str) -> None:
    """The lite transport's settings (the botocore transport reads them with the same function)."""
    if raw.strip() and not accepted(variable, raw.strip()):
        with pytest.raises(ConfigurationError, match=variable):
            LiteSettings.from_environ({variable: raw})
    else:
        made = LiteSettings.from_environ({variable: raw})
        assert math.isfinite(made.connect_timeout)
        assert math.isfinite(made.read_timeout)
        assert made.max_attempts >= 1


def test_check_number_refuses_booleans_and_names_the_label() -> None:
    """True is not a number of seconds; the label (a Config argument) is what the message names."""
    with pytest.raises(ConfigurationError, match=r"Config\(ttl=\.\.\.\)"):
        check_number("CONFSTAGE_TTL", True, label="Config(ttl=...)")
