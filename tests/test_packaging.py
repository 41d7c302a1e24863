"""The distributions: what the wheel says of itself (METADATA) and holds, what the sdist holds, the changelog.

Both are built once, in process, with hatchling's builders (the backend ``python -m build`` calls; ``tox -e
build`` runs that and twine's and check-wheel-contents' checks in CI): a fraction of a second, no network.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
URL = "https://github.com/confstage/confstage"
# What a user's resolver must never see in an extra: the tools for working on confstage itself.
DEV_TOOLING = {
    "aws-sam-translator",
    "awscli",
    "build",
    "cfn-lint",
    "check-wheel-contents",
    "hatchling",
    "hypothesis",
    "matplotlib",
    "mkdocs",
    "mkdocs-material",
    "mypy",
    "pip",
    "pytest",
    "pytest-markdown-docs",
    "pytest-xdist",
    "ruff",
    "tox",
    "tox-uv",
    "twine",
}


def source_version() -> str:
    """``__version__`` as written in confstage/__init__.py (the one place it is written)."""
    tree = ast.parse((ROOT / "confstage" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__version__"]:
            assert isinstance(node.value, ast.Constant)
            return str(node.value.value)
    raise AssertionError("no __version__ in confstage/__init__.py")


@pytest.fixture(scope="module", name="dist")
def fixture_dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and the sdist of this tree, built by hatchling into a temporary directory."""
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("dist")
    [wheel] = WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])
    [sdist] = SdistBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])
    return {"wheel": Path(wheel), "sdist": Path(sdist)}


@pytest.fixture(scope="module", name="wheel_names")
def fixture_wheel_names(dist: dict[str, Path]) -> list[str]:
    with zipfile.ZipFile(dist["wheel"]) as archive:
        return archive.namelist()


@pytest.fixture(scope="module", name="metadata")
def fixture_metadata(dist: dict[str, Path], wheel_names: list[str]) -> email.message.Message:
    [name] = [n for n in wheel_names if n.endswith(".dist-info/METADATA")]
    with zipfile.ZipFile(dist["wheel"]) as archive:
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


@pytest.fixture(scope="module", name="sdist_names")
def fixture_sdist_names(dist: dict[str, Path]) -> set[str]:
    """The sdist's files, relative to its top directory (``confstage-X.Y/``)."""
    with tarfile.open(dist["sdist"]) as archive:
        return {member.name.split("/", 1)[1] for member in archive.getmembers() if member.isfile()}


def test_the_version_is_written_once_and_is_the_distributions(
    metadata: email.message.Message, dist: dict[str, Path]
) -> None:
    """The wheel's Version and both file names are confstage.__version__; pyproject.toml states none of its own."""
    version = source_version()
    assert metadata["Version"] == version
    assert dist["wheel"].name == f"confstage-{version}-py3-none-any.whl"
    assert dist["sdist"].name == f"confstage-{version}.tar.gz"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"^version\s*=", pyproject, re.MULTILINE) is None
    assert 'dynamic = ["version"]' in pyproject


def test_the_license_is_mit_and_ships_in_both_distributions(
    metadata: email.message.Message, wheel_names: list[str], sdist_names: set[str], dist: dict[str, Path]
) -> None:
    """PEP 639: the SPDX expression, the file in the wheel's .dist-info/licenses/ and at the sdist's root, and no
    deprecated "License ::" classifier beside them (PyPI refuses an upload with both)."""
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert not [c for c in metadata.get_all("Classifier", []) if c.startswith("License ::")]
    [license_file] = [n for n in wheel_names if n.endswith(".dist-info/licenses/LICENSE")]
    with zipfile.ZipFile(dist["wheel"]) as archive:
        text = archive.read(license_file).decode("utf-8")
    assert text.startswith("MIT License")
    assert "confstage engineers" in text
    assert text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "LICENSE" in sdist_names


def test_the_urls_and_classifiers(metadata: email.message.Message) -> None:
    """Homepage, Documentation, Changelog and Issues under the project's GitHub address; the classifiers are
    trove's, and the Python ones are exactly 3.10-3.13, as requires-python says."""
    import trove_classifiers

    urls = dict(entry.split(", ", 1) for entry in metadata.get_all("Project-URL", []))
    assert {"Homepage", "Documentation", "Changelog", "Issues"} <= set(urls)
    assert all(url.startswith(URL) for url in urls.values()), urls
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    classifiers = metadata.get_all("Classifier", [])
    assert not set(classifiers) - trove_classifiers.classifiers
    assert not set(classifiers) & set(trove_classifiers.deprecated_classifiers)
    assert {
        "Development Status :: 4 - Beta",
        "Framework :: Pytest",
        "Typing :: Typed",
        "Operating System :: OS Independent",
        "Topic :: Software Development :: Libraries",
        "Topic :: System :: Systems Administration",
    } <= set(classifiers)
    pythons = {
        c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert pythons == {"3.10", "3.11", "3.12", "3.13"}
    assert metadata["Requires-Python"] == ">=3.10"


def test_the_extras_are_a_users_and_hold_no_development_tooling(metadata: email.message.Message) -> None:
    """cli, demo and file are the only extras; no extra pulls pip, hatchling, awscli, mypy, cfn-lint, matplotlib,
    pytest and the like into a user's resolver (they are dependency groups, which are not published)."""
    assert sorted(metadata.get_all("Provides-Extra", [])) == ["cli", "demo", "file"]
    requirements = [Requirement(r) for r in metadata.get_all("Requires-Dist", [])]
    runtime = {r.name.lower() for r in requirements if "extra ==" not in str(r.marker)}
    in_extras = {r.name.lower() for r in requirements if "extra ==" in str(r.marker)}
    assert {"boto3", "cachetools", "cryptography"} <= runtime
    assert {"click", "rich", "moto"} <= in_extras
    assert not (runtime | in_extras) & DEV_TOOLING


def test_the_wheel_holds_the_package_its_typing_marker_and_entry_points(
    wheel_names: list[str], dist: dict[str, Path]
) -> None:
    """Every file of confstage/ (py.typed among them), the demo's example handler, and .dist-info: no tests, no
    bytecode, nothing at the top level but the package."""
    package = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "confstage").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )
    dist_info = f"confstage-{source_version()}.dist-info/"
    files = [n for n in wheel_names if not n.startswith(dist_info)]
    assert sorted(files) == sorted([*package, "confstage/cli/example_handler.py"])
    assert "confstage/py.typed" in files
    assert {n.removeprefix(dist_info) for n in wheel_names if n.startswith(dist_info)} == {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
        "licenses/LICENSE",
    }
    with zipfile.ZipFile(dist["wheel"]) as archive:
        entry_points = archive.read(f"{dist_info}entry_points.txt").decode("utf-8")
    assert "confstage = confstage.cli:main" in entry_points
    assert "[pytest11]\nconfstage = confstage.testing" in entry_points


def test_the_sdist_is_the_repository_as_a_clone_has_it(sdist_names: set[str]) -> None:
    """Its tests run from it: it holds what they read (scripts/, the Makefile, .ci/run, tox.ini, conftest.py,
    examples/, docs/, benchmarks/), every file git tracks, and nothing .gitignore names."""
    needed = {
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "Makefile",
        ".ci/run",
        "tox.ini",
        "conftest.py",
        "scripts/build_layer.py",
        "examples/handler.py",
        "examples/template.yaml",
        "mkdocs.yml",
        "tests/test_packaging.py",
    }
    assert needed <= sdist_names
    junk = re.compile(r"(^|/)(\.venv|\.tox|__pycache__|\.mypy_cache|\.ruff_cache|\.hypothesis|dist|site|\.git)(/|$)")
    assert not [name for name in sdist_names if junk.search(name)]
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (an unpacked sdist): no file list to compare with")
    tracked = subprocess.run([git, "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert not set(tracked.splitlines()) - sdist_names


def test_the_changelog_keeps_a_changelog_and_its_last_release_precedes_this_version() -> None:
    """CHANGELOG.md: Unreleased first, then releases newest first with ISO dates, each heading linked at the
    bottom; the version in the tree is above the last release (this round is unreleased)."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "[Keep a Changelog](https://keepachangelog.com/" in text
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    releases = [Version(name) for name, _ in headings[1:]]
    assert releases == sorted(releases, reverse=True)
    assert [str(v) for v in releases][-2:] == ["0.2.0", "0.1.0"]
    assert all(date for _, date in headings[1:])
    assert Version(source_version()) > releases[0]
    for name, _ in headings:
        assert re.search(rf"^\[{re.escape(name)}\]: {re.escape(URL)}/", text, re.MULTILINE), name
    sections = set(re.findall(r"^### (.+)$", text, re.MULTILINE))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
