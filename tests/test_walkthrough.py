"""docs/walkthrough.md agrees with the example: its exports are the function's environment, its deploy
names the template's parameters, and requirements.txt finds the wheel it builds.

The page's blocks themselves run under pytest-markdown-docs (conftest.py); these tests check what
they cannot: the `sam` commands that are not run, and that the locally invoked environment is the
deployed one.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from .doc_blocks import parse_console

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "walkthrough.md"
TEMPLATE = ROOT / "examples" / "template.yaml"
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
VARIABLE = re.compile(r"\$(\w+)")
ASSIGNMENT = re.compile(r"[A-Za-z_]\w*=")


def _commands(notest: bool) -> list[str]:
    """The page's console commands, in order: the ones the tests run, or the ones marked notest."""
    commands: list[str] = []
    for fence in FENCE.finditer(PAGE.read_text(encoding="utf-8")):
        words = fence["info"].split()
        if words[:1] == ["console"] and ("notest" in words) == notest:
            commands += [command.text.replace("\\\n", " ") for command in parse_console(fence["body"])]
    return commands


def _exports() -> dict[str, str]:
    """Every variable the page exports, as written (``$NAME`` references left in)."""
    exported: dict[str, str] = {}
    for command in _commands(notest=False):
        if command.startswith("export "):
            for word in shlex.split(command[len("export ") :], comments=True):
                if ASSIGNMENT.match(word):  # (a $(command …) substitution splits into words: kept opaque)
                    name, _, value = word.partition("=")
                    exported[name] = value
    return exported


def _expand(text: str, names: dict[str, str]) -> str:
    """``$NAME`` references replaced by their definitions, until none that is defined is left."""
    for _ in range(10):
        expanded = VARIABLE.sub(lambda m: names.get(m[1], m[0]), text)
        if expanded == text:
            return text
        text = expanded
    raise AssertionError(f"a cycle of definitions in {text!r}")


def _deploy_parameters() -> dict[str, str]:
    """The ``--parameter-overrides`` of the page's ``sam deploy``."""
    (deploy,) = [c for c in _commands(notest=True) if c.startswith("sam deploy")]
    words = shlex.split(deploy)
    overrides = words[words.index("--parameter-overrides") + 1 :]
    return dict(word.partition("=")[::2] for word in overrides)


@pytest.fixture(name="template", scope="module")
def fixture_template() -> dict[str, Any]:
    """The example's SAM template, intrinsic functions decoded."""
    from cfnlint.decode import decode

    decoded, matches = decode(str(TEMPLATE))
    assert not matches, matches
    assert decoded is not None
    return dict(decoded)


def test_deploy_gives_every_parameter_without_a_default(template: dict[str, Any]) -> None:
    """`sam deploy` on the page sets each required parameter of the template, and no unknown one."""
    parameters = template["Parameters"]
    given = set(_deploy_parameters())
    assert given <= set(parameters)
    assert {name for name, spec in parameters.items() if "Default" not in spec} <= given


def test_local_environment_is_the_functions(template: dict[str, Any]) -> None:
    """The variables exported before `python invoke.py` are the template's, with the page's parameter values."""
    names = _exports()
    substitutions = {**_deploy_parameters(), "AWS::StackName": "$STACK"}
    variables = template["Resources"]["HelloFunction"]["Properties"]["Environment"]["Variables"]
    function_name = template["Resources"]["HelloFunction"]["Properties"]["FunctionName"]["Fn::Sub"]
    expected: dict[str, str] = {}
    for name, value in {**variables, "AWS_LAMBDA_FUNCTION_NAME": {"Fn::Sub": function_name}}.items():
        if isinstance(value, dict) and "Fn::Sub" in value:
            value = re.sub(r"\$\{([^}]+)\}", lambda m: substitutions[m[1]], value["Fn::Sub"])
        elif isinstance(value, dict) and "Ref" in value:
            value = substitutions[value["Ref"]]
        expected[name] = " ".join(_expand(str(value), names).split())
    exported = {name: " ".join(_expand(names[name], names).split()) for name in expected if name in names}
    assert exported == expected


def test_the_function_takes_confstage_from_the_layer_the_page_builds(template: dict[str, Any]) -> None:
    """The template's layer is the zip ``make layer`` writes (for the function's runtime and architecture), the
    function uses it, and requirements.txt installs nothing beside the handler (no second copy of confstage)."""
    layer = template["Resources"]["ConfstageLayer"]["Properties"]
    zip_name = "confstage-layer-py3.12-x86_64.zip"  # what `make layer` names the default target's layer
    assert (ROOT / "examples" / layer["ContentUri"]).resolve() == ROOT / "dist" / zip_name
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "PYTHON ?= 3.12" in makefile
    assert "ARCH ?= x86_64" in makefile
    runtime = template["Globals"]["Function"]["Runtime"]
    assert layer["CompatibleRuntimes"] == [runtime] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == template["Globals"]["Function"]["Architectures"] == ["x86_64"]
    function = template["Resources"]["HelloFunction"]["Properties"]
    assert function["Layers"] == [{"Ref": "ConfstageLayer"}]
    requirements = (ROOT / "examples" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert [line for line in requirements if line.strip() and not line.startswith("#")] == []
