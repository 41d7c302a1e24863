"""The types a user's code gets from confstage hold under ``mypy --strict``, and its mistakes are caught.

tests/typing_cases/ is code written as a user writes it: ``types_users_get.py`` pins with ``assert_type`` what each
public function and ``Config`` method gives (``get("k", None)`` is ``str | None``); ``types_users_get_wrong.py``
holds mistakes, each marked ``# type: ignore[code]`` with the error it must raise. One mypy run checks both:
``--warn-unused-ignores`` makes a mistake mypy stopped seeing (a misspelt keyword swallowed by ``**kwargs``)
an error, and a wrong code does not silence the error it misnames.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import confstage
import confstage.testing
from confstage import Config
from confstage.testing import MemorySource

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "typing_cases"


def test_users_code_type_checks_as_written() -> None:
    """mypy --strict passes the user-style cases: every assert_type holds and every ignore is needed."""
    api = pytest.importorskip("mypy.api")
    stdout, stderr, status = api.run(
        [
            str(CASES),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--strict",
            "--warn-unused-ignores",
            "--cache-dir",  # the project's own: warm after `make types` (about 5 s cold, under 1 s warm)
            str(ROOT / ".mypy_cache"),
        ]
    )
    assert status == 0, stdout + stderr


def test_the_wrong_cases_are_there() -> None:
    """The mistakes file holds its mistakes (an emptied file would pass the mypy run above vacuously)."""
    text = (CASES / "types_users_get_wrong.py").read_text(encoding="utf-8")
    assert text.count("# type: ignore[") >= 15
    assert "defualt=1)  # type: ignore[call-overload]" in text
    assert "sourcez=" in text


def _public_callables() -> dict[str, Callable[..., Any]]:
    """The public functions of confstage and its testing kit, and the public methods of Config."""
    found: dict[str, Callable[..., Any]] = {}
    for module in (confstage, confstage.testing):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value):
                found[f"{module.__name__}.{name}"] = value
    for name, value in inspect.getmembers(Config, inspect.isfunction):
        if not name.startswith("_") or name == "__init__":
            found[f"Config.{name}"] = value
    return found


@pytest.mark.parametrize("name", sorted(_public_callables()))
def test_no_public_signature_takes_arbitrary_keywords(name: str) -> None:
    """No public function or Config method swallows keywords (``**kwargs: Any``): a misspelt one is an error.

    A ``**values: str`` of values given as keywords (``override(db_url="sqlite://")``) is typed, so allowed."""
    parameters = inspect.signature(_public_callables()[name]).parameters.values()
    assert not [p.name for p in parameters if p.kind is p.VAR_KEYWORD and p.annotation != "str"]


def test_configure_takes_exactly_configs_arguments() -> None:
    """configure() spells out Config()'s parameters, same names, kinds and defaults, so they cannot drift apart."""
    configure = list(inspect.signature(confstage.configure).parameters.values())
    init = list(inspect.signature(Config.__init__).parameters.values())[1:]  # less self
    assert [(p.name, p.kind, p.default) for p in configure] == [(p.name, p.kind, p.default) for p in init]


def test_handler_at_run_time_takes_the_decorators_arguments() -> None:
    """confstage.handler (a lazy stand-in at run time) takes what confstage.decorator.handler takes."""
    from confstage import decorator

    ours = inspect.signature(confstage.handler).parameters
    theirs = inspect.signature(decorator.handler).parameters
    assert [(p.name, p.kind, p.default) for p in ours.values()] == [
        (p.name, p.kind, p.default) for p in theirs.values()
    ]


def test_a_default_of_any_type_is_returned_as_given() -> None:
    """What the overloads promise at run time: get("k", None) is None, get_int("k", None) is None, and so on."""
    confstage.configure([MemorySource({"PRD": {"port": "8080"}})], stage="PRD", cache_dir="")
    assert confstage.get("absent", None) is None
    assert confstage.get_int("absent", None) is None
    assert confstage.get_float("absent", default=None) is None
    assert confstage.get_bool("absent", None) is None
    assert confstage.get_int("port", None, stage="PRD", max_age=0, force=True) == 8080
