"""Imports point one way: confstage's modules form layers, and no import, at the top of a module or inside a
function, goes up a layer or closes a cycle (``TYPE_CHECKING`` blocks aside: they never run).

The check reads every module's source (``ast``), so an import made inside a function to dodge a cycle at import
time is caught like any other. A new module must be given a layer in ``LAYERS`` (the test says so).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

import confstage

# Lowest first. A module may import its own layer's modules and any below, never one above; within a layer the
# imports must still form no cycle. A name matches a module and everything below it (``confstage.transport``
# covers ``confstage.transport.lite.http``), the longest match winning; the package itself matches only itself.
LAYERS: Sequence[tuple[str, ...]] = (
    # foundations: errors, names and rules, settings, logging, state (ContextVars), counters
    (
        "confstage.errors",
        "confstage._log",
        "confstage.names",
        "confstage.variables",
        "confstage._backoff",
        "confstage.convert",
        "confstage.metrics",
        "confstage._context",
    ),
    ("confstage.transport",),  # one AWS request over HTTP: lite, botocore, signing, endpoints, selection
    ("confstage.aws",),  # the call layer: which request, its deadline, its answer checked; the runtime transport
    ("confstage.crypto",),  # envelopes and sealing (KMS through the call layer)
    ("confstage.sources", "confstage.stage"),  # the runtime sources and failover; stages from ARNs
    ("confstage.cache", "confstage.objects"),  # memory, /tmp, flights; get_path's files
    ("confstage.chain", "confstage.typed", "confstage.feature_flags", "confstage.manifest", "confstage.emf"),
    ("confstage.client", "confstage.snapstart"),  # Config, and the default client
    ("confstage.decorator", "confstage.rotation", "confstage.stores"),  # @handler, refresh_on; the admin side
    # what users and tools enter through
    ("confstage", "confstage.testing", "confstage._appconfig_server", "confstage.cli", "confstage.__main__"),
)


def modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package under ``root``, by dotted name."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    assert package in found
    return found


def imports(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's modules ``name`` imports (with their line), at its top or in any function, and the packages
    an import runs on the way (``a.b`` for ``a.b.c``); not those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            if target in known and target != name:
                yield target, node.lineno
                # Importing a.b.c runs a/b/__init__.py first, unless the importer is inside a.b already.
                ancestor = target.rpartition(".")[0]
                while ancestor in known and not (name == ancestor or name.startswith(ancestor + ".")):
                    yield ancestor, node.lineno
                    ancestor = ancestor.rpartition(".")[0]


def layer_of(name: str, layers: Sequence[Iterable[str]]) -> int | None:
    best: tuple[int, int] | None = None
    for index, names in enumerate(layers):
        for prefix in names:
            matches = name == prefix or ("." in prefix and name.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def problems(root: Path, package: str, layers: Sequence[Iterable[str]]) -> list[str]:
    """Every upward import, every module without a layer, and every cycle, as sentences."""
    known = modules(root, package)
    found: list[str] = []
    edges: dict[str, set[str]] = {}
    for name, path in sorted(known.items()):
        mine = layer_of(name, layers)
        if mine is None:
            found.append(f"{name} has no layer: add it to LAYERS in tests/test_layers.py")
            continue
        for target, line in imports(name, path, known):
            edges.setdefault(name, set()).add(target)
            theirs = layer_of(target, layers)
            if theirs is not None and theirs > mine:
                found.append(f"{path.relative_to(root.parent)}:{line}: {name} imports {target}, a layer above it")
    found.extend(f"an import cycle: {' -> '.join(cycle)}" for cycle in cycles(edges))
    return found


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_confstage_imports_point_one_way() -> None:
    """The contract itself, over the installed package's source."""
    root = Path(confstage.__file__).parent
    assert problems(root, "confstage", LAYERS) == []


@pytest.mark.parametrize(
    ("where", "code", "expected"),
    [
        ("low.py", "def f():\n    from pkg import high\n", "pkg.low imports pkg.high, a layer above it"),
        ("low.py", "import pkg.high\n", "pkg.low imports pkg.high, a layer above it"),
        ("low.py", "from . import high\n", "pkg.low imports pkg.high, a layer above it"),
        ("mid/__init__.py", "from ..high import x\n", "pkg.mid imports pkg.high, a layer above it"),
        ("low.py", "from pkg import other\n", "an import cycle: pkg.low -> pkg.other"),
        # through a package's __init__: importing pkg.mid.leaf runs pkg/mid/__init__.py, which imports pkg.low
        ("low.py", "def f():\n    from pkg.mid import leaf\n", "pkg.low imports pkg.mid, a layer above it"),
        ("new.py", "", "pkg.new has no layer"),
    ],
)
def test_an_upward_import_fails_the_contract(tmp_path: Path, where: str, code: str, expected: str) -> None:
    """A deliberately added upward import (inside a function too), a cycle and an unplaced module each fail it."""
    package = tmp_path / "pkg"
    (package / "mid").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "low.py": "",
        "other.py": "from pkg import low\n",
        "mid/__init__.py": "from pkg import low\n",
        "mid/leaf.py": "",
        "high.py": "from pkg import mid\nx = 1\n",
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import high\n",
    }
    files[where] = files.get(where, "") + code
    for name, text in files.items():
        (package / name).write_text(text)
    layers = [("pkg.low", "pkg.other", "pkg.typed", "pkg.mid.leaf"), ("pkg.mid",), ("pkg", "pkg.high")]
    found = problems(package, "pkg", layers)
    assert any(expected in problem for problem in found), found


def test_type_checking_imports_are_not_counted(tmp_path: Path) -> None:
    """An import under ``if TYPE_CHECKING:`` never runs, so it may point anywhere."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import high\n")
    (package / "high.py").write_text("from pkg import low\n")
    assert problems(package, "pkg", [("pkg.low",), ("pkg", "pkg.high")]) == []
