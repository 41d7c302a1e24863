"""Every public error survives pickling (a process pool's queue) and copying, with its message and attributes.

The classes are found, not listed: every exception class defined in a public module of the package (no
``_`` in its dotted path) under a public name, so a new error class is covered the day it is written.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pickle
import pkgutil
from collections.abc import Callable
from multiprocessing.reduction import ForkingPickler
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confstage
from confstage.errors import ConfstageError, KeyNotFoundError
from confstage.manifest import Problem


def _public_errors() -> list[type[BaseException]]:
    """Exception classes defined in confstage's public modules under public names, in a stable order."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(confstage.__path__, "confstage."):
        if info.name.endswith("__main__") or any(part.startswith("_") for part in info.name.split(".")):
            continue  # __main__ runs the CLI when imported; _private modules hold no public name
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
                and not name.startswith("_")
            ):
                found[f"{info.name}.{name}"] = value
    return [found[name] for name in sorted(found)]


ERRORS = _public_errors()

# What to pass for parameters hypothesis cannot infer from their annotations (strings under ``annotations``).
text = st.text(max_size=20)
names = st.lists(text, max_size=3)
BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "str": text,
    "str | None": st.none() | text,
    "str | Sequence[str]": text | names,
    "Sequence[str]": names,
    "Iterable[str]": names,
    "bool": st.booleans(),
    "int": st.integers(),
    "int | None": st.none() | st.integers(),
    "float": st.floats(allow_nan=False),
    "BaseException": st.sampled_from([ValueError("boom"), KeyNotFoundError("k", "PRD", ["env://"])]),
    "Sequence[Problem]": st.lists(st.builds(Problem, text, text, text, text), max_size=3),
}


def _instances(cls: type[BaseException]) -> st.SearchStrategy[BaseException]:
    """Instances of ``cls`` with every parameter of its ``__init__`` drawn (the optional ones too)."""
    arguments: dict[str, st.SearchStrategy[Any]] = {}
    positional: list[st.SearchStrategy[Any]] = []
    try:
        signature = inspect.signature(cls)
    except ValueError:  # no __init__ of its own in Python: Exception's, from C
        signature = inspect.Signature()
    parameters = [p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not parameters:  # Exception's own (*args, **kwargs): a class made with its message
        return st.builds(cls, text)
    for parameter in parameters:
        annotation = parameter.annotation
        if not isinstance(annotation, str):  # a module without ``from __future__ import annotations`` (click)
            annotation = "str" if annotation is parameter.empty else getattr(annotation, "__name__", repr(annotation))
        strategy = BY_TYPE.get(annotation)
        assert strategy is not None, f"{cls.__qualname__}({parameter.name}: {annotation}): add a strategy to BY_TYPE"
        if parameter.kind is parameter.POSITIONAL_ONLY:
            positional.append(strategy)
        else:
            arguments[parameter.name] = strategy
    return st.tuples(*positional).flatmap(lambda args: st.builds(cls, *map(st.just, args), **arguments))


def _state(error: BaseException) -> tuple[Any, ...]:
    """What a copy must keep: its class, args, message, and every attribute (causes compared by their text)."""
    attributes = {k: str(v) if isinstance(v, BaseException) else v for k, v in vars(error).items()}
    return type(error), error.args, str(error), repr(error), attributes


COPIES: dict[str, Callable[[BaseException], BaseException]] = {
    "pickle": lambda e: pickle.loads(pickle.dumps(e)),  # noqa: S301 - our own bytes, made a line before
    "process pool": lambda e: ForkingPickler.loads(ForkingPickler.dumps(e)),
    "copy": copy.copy,
    "deepcopy": copy.deepcopy,
}


def test_the_errors_are_found() -> None:
    """Discovery sees the errors of confstage.errors and those defined beside their use (so the test has teeth)."""
    names = {cls.__qualname__ for cls in ERRORS}
    assert set(confstage.errors.__all__) <= names
    assert {"PartialWriteError", "DotenvError", "AwsError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda cls: cls.__qualname__)
@settings(max_examples=40)  # x 4 copies x ~20 classes: about a second in all
@given(data=st.data())
def test_an_error_round_trips(cls: type[BaseException], data: st.DataObject) -> None:
    """A pickled, pool-pickled, copied or deep-copied error has the class, args, message, repr and attributes
    of the error it copies."""
    error = data.draw(_instances(cls))
    for how, make in COPIES.items():
        copied = make(error)
        assert copied is not error, how
        assert _state(copied) == _state(error), how


def test_a_key_not_found_error_keeps_its_structure_across_a_pickle() -> None:
    """The error the issue names: key, stage and sources survive, and it is still caught as a KeyError."""
    error = KeyNotFoundError(["db_url", "db_user"], "PRD", ["env://", "ssm:///app"])
    copied = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (copied.keys, copied.key, copied.stage, copied.sources) == (error.keys, "db_url", "PRD", error.sources)
    assert str(copied) == "keys 'db_url', 'db_user' not found for stage 'PRD' (tried: env://, ssm:///app)"
    assert isinstance(copied, KeyError)
    assert isinstance(copied, ConfstageError)
