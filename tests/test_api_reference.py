"""docs/api.md documents every public name, and nothing that does not exist.

The site renders docs/api.md's mkdocstrings directives (``::: confstage.x`` with an optional ``members:`` list);
this test reads them as mkdocstrings does: a directive with ``members`` documents those names of its target,
one without documents the target and its public members (a module's ``__all__``; a class's own attributes, and
its inherited ones under ``inherited_members: true``). Every name in ``confstage.__all__`` and
``confstage.testing.__all__`` must be one of the objects so documented, and each public method a confstage class
defines, inherited ones included, must be on the page: a new public name without an entry fails the build, with
the line to add.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import confstage
import confstage.testing
from confstage.client import Config

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "api.md"
DIRECTIVE = re.compile(r"^::: (?P<target>[\w.]+)[ \t]*\n(?P<options>(?:(?:[ \t]{4}.*)?\n)*)", re.MULTILINE)


class Directive(NamedTuple):
    """One ``::: target`` of the page and its options."""

    target: str
    options: dict[str, Any]


def _options(block: str) -> dict[str, Any]:
    """The ``options:`` of a directive: ``key: value`` lines (true/false read as bools) and ``- item`` lists."""
    options: dict[str, Any] = {}
    key = ""
    for line in block.splitlines():
        item = line.strip()
        if not item or item == "options:":
            continue
        if item.startswith("- "):
            options[key].append(item[2:].strip())
            continue
        key, _, value = item.partition(":")
        value = value.strip()
        options[key] = [] if not value else {"true": True, "false": False}.get(value, value)
    return options


def _directives(text: str) -> list[Directive]:
    return [Directive(m["target"], _options(m["options"])) for m in DIRECTIVE.finditer(text)]


DIRECTIVES = _directives(PAGE.read_text(encoding="utf-8"))


def _resolve(path: str) -> Any:
    """The object at a dotted path: the longest importable module prefix, then attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            value = getattr(value, part)  # AttributeError: the page names what does not exist
        return value
    raise ImportError(path)


def _public_members(value: Any, *, inherited: bool) -> dict[str, Any]:
    """What mkdocstrings shows of a module or class documented whole: public names (filter ``!^_``); of a class,
    those with a docstring of their own (``show_if_no_docstring`` is off), from confstage bases too if inherited."""
    if inspect.ismodule(value):
        names = getattr(value, "__all__", [n for n in vars(value) if not n.startswith("_")])
        return {name: getattr(value, name) for name in names}
    if inspect.isclass(value):
        classes = [c for c in value.__mro__ if c.__module__.startswith("confstage")] if inherited else [value]
        members: dict[str, Any] = {}
        for cls in reversed(classes):
            members.update({k: v for k, v in vars(cls).items() if not k.startswith("_") and _has_docstring(v)})
        return members
    return {}


def _has_docstring(value: Any) -> bool:
    function = getattr(value, "__func__", value)  # classmethod, staticmethod
    function = getattr(function, "fget", function)  # property
    return not callable(function) or bool(getattr(function, "__doc__", None))


def _documented() -> dict[str, Any]:
    """Every dotted path the page documents, and the object there."""
    documented: dict[str, Any] = {}
    for directive in DIRECTIVES:
        try:
            target = _resolve(directive.target)
        except (ImportError, AttributeError):
            continue  # reported by test_everything_the_page_names_exists
        documented[directive.target] = target
        members = directive.options.get("members")
        inherited = bool(directive.options.get("inherited_members"))
        if members:  # those members, each whole
            for name in members:
                if not hasattr(target, name):
                    continue  # reported by test_everything_the_page_names_exists
                member = documented[f"{directive.target}.{name}"] = getattr(target, name)
                for inner, value in _public_members(member, inherited=inherited).items():
                    documented[f"{directive.target}.{name}.{inner}"] = value
        else:
            for name, value in _public_members(target, inherited=inherited).items():
                documented[f"{directive.target}.{name}"] = value
    return documented


def _is_documented(value: Any, documented: dict[str, Any]) -> bool:
    return any(value is other for other in documented.values())


def _what_to_add(module: str, name: str, value: Any) -> str:
    """The exact line to add to docs/api.md for a public name it lacks."""
    if module != "confstage":
        return f'add "        - {name}" to the members list under "::: {module}"'
    if not inspect.isclass(value):
        return f'add "        - {name}" to the members list under "::: confstage" ("## The module functions")'
    if value.__module__ == "confstage.errors":
        return f'add "{name}" to confstage.errors.__all__ (the page documents that module whole, under "## Errors")'
    return f'add a section with "::: {value.__module__}.{value.__qualname__}" on a line of its own'


def test_the_page_is_read() -> None:
    """The directives are found, with their options (so the checks below have something to check)."""
    targets = [d.target for d in DIRECTIVES]
    assert {"confstage", "confstage.client.Config", "confstage.errors", "confstage.testing"} <= set(targets)
    assert "get" in next(d for d in DIRECTIVES if d.target == "confstage").options["members"]


def test_everything_the_page_names_exists() -> None:
    """Each directive's target and listed member resolves (a name removed from the code leaves no dead entry)."""
    for directive in DIRECTIVES:
        try:
            target = _resolve(directive.target)
        except (ImportError, AttributeError):
            pytest.fail(f'docs/api.md documents "::: {directive.target}", which does not exist: remove it')
        for name in directive.options.get("members") or ():
            assert hasattr(target, name), (
                f'docs/api.md lists "{name}" under "::: {directive.target}", which has no such name: remove it'
            )


@pytest.mark.parametrize(
    ("module", "name"),
    [("confstage", name) for name in confstage.__all__]
    + [("confstage.testing", name) for name in confstage.testing.__all__],
)
def test_every_public_name_is_documented(module: str, name: str) -> None:
    """A name in confstage.__all__ or confstage.testing.__all__ is among the objects the page documents."""
    value = getattr(importlib.import_module(module), name)
    assert _is_documented(value, _documented()), (
        f"{module}.{name} is public ({module}.__all__) but docs/api.md does not document it: "
        + _what_to_add(module, name, value)
    )


def _public_classes() -> list[type]:
    names = [getattr(confstage, n) for n in confstage.__all__] + [
        getattr(confstage.testing, n) for n in confstage.testing.__all__
    ]
    return [value for value in names if inspect.isclass(value)]


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__qualname__)
def test_every_method_of_a_public_class_is_documented(cls: type) -> None:
    """Each public method or property a confstage class has, inherited from a confstage base or not, is on the page
    (Config's getters live in getters.Getters: without inherited_members the page would show none of them)."""
    documented = _documented()
    path = next(p for p, v in documented.items() if v is cls)
    methods = [
        name
        for name, value in {**_inherited(cls), **vars(cls)}.items()
        if not name.startswith("_") and (callable(value) or isinstance(value, (property, classmethod, staticmethod)))
    ]
    missing = sorted({name for name in methods if f"{path}.{name}" not in documented})
    assert not missing, (
        f"docs/api.md shows {cls.__qualname__} without {', '.join(missing)}: give each a docstring, and document the "
        f'class whole ("::: {path}" with no members list; "inherited_members: true" for those of a base class)'
    )


def _inherited(cls: type) -> dict[str, Any]:
    """The attributes a class has from its confstage base classes."""
    found: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        if base.__module__.startswith("confstage"):
            found.update(vars(base))
    return found


def test_configs_arguments_are_each_explained() -> None:
    """Each parameter of Config() has its row in the page's table, and the signature is shown with the class."""
    section = PAGE.read_text(encoding="utf-8").split("## `Config`", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    parameters = list(inspect.signature(Config.__init__).parameters)[1:]
    assert rows == set(parameters), f"add a row to the Config table of docs/api.md for: {set(parameters) - rows}"
    directive = next(d for d in DIRECTIVES if d.target == "confstage.client.Config")
    assert directive.options.get("merge_init_into_class") is True
