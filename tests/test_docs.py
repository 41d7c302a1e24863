"""README.md and docs/: every block runs or says why not, and what the pages state about the code holds.

The blocks themselves run under pytest-markdown-docs (see conftest.py); these tests pin what a
block cannot show: that no block escapes running unnoticed, that the error tree and the table of
variables are the code's, that links lead somewhere and that the site lists every page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import confstage.errors
from confstage import variables

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.MULTILINE | re.DOTALL
)
RUN = {"python", "console"}  # the languages whose blocks run
NOT_CODE = {"text"}  # output samples and diagrams
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?:#[^)\s]*)?\)")


def _fences(page: Path) -> list[tuple[int, list[str]]]:
    """(line, info words) of every fenced block of a page."""
    text = page.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m["info"].split()) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_runs_or_says_why_not(page: Path) -> None:
    """A fence is Python or console (run), text (not code), or marked notest right after a comment saying why."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for line, words in _fences(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        assert words, f"{where}: a fence without a language"
        assert words[0] in RUN | NOT_CODE, f"{where}: {words[0]} blocks neither run nor are marked as not code"
        if "notest" in words:
            before = "\n".join(lines[max(0, line - 4) : line - 1])
            assert re.search(r"<!-- Not run by (pytest|the tests)\b[^>]*-->", before), (
                f"{where}: notest without a reason"
            )


def test_a_notest_block_is_found(tmp_path: Path) -> None:
    """The fence pattern sees a notest block and its words (so the check above has something to check)."""
    page = tmp_path / "page.md"
    page.write_text("text\n\n<!-- Not run by pytest: why -->\n```console notest\n$ make demo\n```\n")
    assert _fences(page) == [(4, ["console", "notest"])]


def _tree() -> dict[str, str]:
    """The error tree on docs/configuration.md: each class and its parent (the base has '')."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    block = text.split("## Errors", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = re.match(r"^(?P<lead>[│├└─\s]*)(?P<name>\w+)\s", line + " ")
        assert match, line
        depth = len(match["lead"]) // 4
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match["name"]] = stack[-1][1] if stack else ""
        stack.append((depth, match["name"]))
    return parents


def test_error_tree_is_the_hierarchy() -> None:
    """Every class of confstage.errors is on the page, under the confstage class it derives from."""
    tree = _tree()
    assert set(tree) == set(confstage.errors.__all__)
    for name, parent in tree.items():
        cls = getattr(confstage.errors, name)
        bases = [b.__name__ for b in cls.__bases__ if issubclass(b, confstage.errors.ConfstageError)]
        assert bases == ([parent] if parent else []), name


def test_variables_table_is_the_codes() -> None:
    """The CONFSTAGE_* variables on docs/configuration.md are the ones the code reads, with its defaults."""
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    table = text.split("## Environment variables", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`(CONFSTAGE_[A-Z_]+)`", table))
    read = set()
    for module in (ROOT / "confstage").rglob("*.py"):
        if "cli" not in module.parts:
            read |= set(re.findall(r"[\"'](CONFSTAGE_[A-Z][A-Z_]*)[\"']", module.read_text(encoding="utf-8")))
    assert documented == read
    defaults = {row.split("|")[1].strip(): row.split("|")[3].strip() for row in table.splitlines()[2:]}
    assert defaults["`CONFSTAGE_SOURCES`"] == f"`{variables.DEFAULT_SOURCES}`"
    assert defaults["`CONFSTAGE_CACHE_DIR`"] == f"`{variables.DEFAULT_CACHE_DIR}`"
    for name, default in {
        "TTL": variables.DEFAULT_TTL,
        "TTL_JITTER": variables.DEFAULT_TTL_JITTER,
        "MAX_STALE": variables.DEFAULT_MAX_STALE,
        "SECRET_MAX_STALE": variables.DEFAULT_SECRET_MAX_STALE,
        "FETCH_TIMEOUT": variables.DEFAULT_FETCH_TIMEOUT,
        "REFRESH_TIMEOUT": variables.DEFAULT_REFRESH_TIMEOUT,
    }.items():
        assert defaults[f"`CONFSTAGE_{name}`"] == f"`{default:g}`", name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files(page: Path) -> None:
    """Every relative link of a page names a file of the repository (so it works on GitHub)."""
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match["target"]
        if re.match(r"^[a-z]+:", target):
            continue
        assert (page.parent / target).exists(), f"{page.relative_to(ROOT)}: {target}"


def test_site_lists_every_page() -> None:
    """mkdocs.yml's nav names each page of docs/ once, and only those."""
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE)
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav) == pages


def test_quick_start_is_what_ci_runs() -> None:
    """The README's quick start (make demo, make test) is what .ci/run runs on a fresh clone."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```console notest\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].removeprefix("$ ").strip() for line in quick.splitlines()]
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ran = [line.strip() for line in script.splitlines() if line.strip().startswith("make ")]
    assert commands == ran == ["make demo", "make test"]
