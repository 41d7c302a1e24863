"""``make layer``: a Lambda layer zip with confstage and its runtime wheels, importable on a bare interpreter.

The layer is built for this interpreter's version (so that its compiled extension and bytecode load
here), then unpacked and used with ``python -S`` and only the layer on ``PYTHONPATH``, as Lambda's runtime
would see ``/opt/python``; a second one for arm64 and another Python holds only that Python's bytecode.
Building downloads the wheels from PyPI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_VERSION = "3.13" if VERSION == "3.12" else "3.12"  # a Lambda runtime this interpreter is not
MAX_BYTES = 15 * 2**20
SCRIPT = ROOT / "scripts" / "build_layer.py"


def _script() -> Any:
    """scripts/build_layer.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_layer", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bytecode_tags(names: list[str]) -> set[str]:
    """The interpreter tags (``cpython-312``) of the ``.pyc`` files among ``names``."""
    return {name.rsplit(".", 2)[-2] for name in names if name.endswith(".pyc")}


def build(tmp_path: Path, *args: str) -> Path:
    output = tmp_path / "layer.zip"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_layer.py"), "--output", str(output), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return output


@pytest.fixture(scope="module", name="layer")
def fixture_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer for this Python on x86_64, unpacked: the directory that holds ``python/``."""
    tmp = tmp_path_factory.mktemp("layer")
    output = build(tmp, "--python", VERSION, "--arch", "x86_64")
    assert output.stat().st_size <= MAX_BYTES
    unpacked = tmp / "opt"
    with zipfile.ZipFile(output) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_the_layer_holds_python_at_its_root_without_boto3_or_the_cli(layer: Path) -> None:
    """python/ is the only top-level entry; boto3, botocore, click, rich and confstage.cli are not in it."""
    assert [p.name for p in layer.iterdir()] == ["python"]
    names = {p.name.split("-")[0].lower() for p in (layer / "python").iterdir()}
    assert {"confstage", "cryptography", "cffi"} <= names
    assert not names & {"boto3", "botocore", "click", "rich", "bin"}
    assert not (layer / "python" / "confstage" / "cli").exists()
    compiled = list((layer / "python" / "confstage").rglob(f"*.cpython-{VERSION.replace('.', '')}.pyc"))
    assert compiled, "the layer ships bytecode for its Python version"
    pycs = [str(p.relative_to(layer)) for p in layer.rglob("*.pyc")]
    assert bytecode_tags(pycs) == {f"cpython-{VERSION.replace('.', '')}"}, "bytecode for its Python version only"


def test_a_bare_interpreter_imports_confstage_reads_a_value_and_uses_aes_gcm(layer: Path) -> None:
    """python -S with only the layer on PYTHONPATH: import confstage, a get, and the bundled cryptography's AES-GCM."""
    script = """
import json, os, sys
import confstage
os.environ.update(CONFSTAGE_STAGE="PRD", CONFSTAGE_CACHE_DIR="", PRD_db_url="postgres://prd")
value = confstage.get("db_url")
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = AESGCM.generate_key(bit_length=256)
sealed = AESGCM(key).encrypt(b"0" * 12, b"secret", b"aad")
opened = AESGCM(key).decrypt(b"0" * 12, sealed, b"aad")
print(json.dumps({"value": value, "opened": opened.decode(), "confstage": confstage.__file__,
                  "sdk": sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))}))
"""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(layer / "python"), "PYTHONNOUSERSITE": "1"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script], capture_output=True, text=True, env=env, check=True, cwd=layer
    )
    result = json.loads(out.stdout)
    assert result["value"] == "postgres://prd"
    assert result["opened"] == "secret"
    assert result["confstage"].startswith(str(layer / "python"))
    assert result["sdk"] == []


def test_an_arm64_layer_for_another_python_carries_its_wheels_and_no_bytecode_of_ours(tmp_path: Path) -> None:
    """--arch arm64 --python X.Y (not this interpreter's) installs manylinux aarch64 builds for X.Y, and the
    only bytecode it ships is X.Y's: none compiled by the interpreter running the build (pip compiled with
    it, 112 foreign .pyc files in a 3.12 layer built on 3.11)."""
    output = build(tmp_path, "--python", OTHER_VERSION, "--arch", "arm64")
    with zipfile.ZipFile(output) as archive:
        names = archive.namelist()
        wheel_tags = [archive.read(n).decode() for n in names if n.endswith(".dist-info/WHEEL")]
    extensions = [n for n in names if n.endswith(".so")]
    assert any("aarch64" in tags for tags in wheel_tags)
    assert extensions
    assert all("x86_64" not in name for name in extensions)
    assert bytecode_tags(names) <= {f"cpython-{OTHER_VERSION.replace('.', '')}"}


def test_the_default_name_carries_the_python_version_and_the_lambda_architecture() -> None:
    """make layer ARCH=arm64 writes beside the x86_64 zip, not over it; arm64's aliases name the same file."""
    script = _script()
    assert script.default_output("3.12", "x86_64") == ROOT / "dist" / "confstage-layer-py3.12-x86_64.zip"
    assert script.default_output("3.12", "arm64") == ROOT / "dist" / "confstage-layer-py3.12-arm64.zip"
    assert script.default_output("3.13", "aarch64") == script.default_output("3.13", "ARM64")
    assert script.default_output("3.12", "amd64") == script.default_output("3.12", "x86_64")


def test_the_example_template_deploys_the_layer_built_for_its_runtime_and_architecture() -> None:
    """examples/template.yaml's ConfstageLayer takes the zip make layer names for the function's runtime and
    architecture, and declares both."""
    from cfnlint.decode import decode

    template, problems = decode(str(ROOT / "examples" / "template.yaml"))
    assert not problems, problems
    assert template is not None
    function = template["Globals"]["Function"]
    layer = template["Resources"]["ConfstageLayer"]["Properties"]
    python = function["Runtime"].removeprefix("python")
    [arch] = function["Architectures"]
    assert (ROOT / "examples" / layer["ContentUri"]).resolve() == _script().default_output(python, arch)
    assert layer["CompatibleRuntimes"] == [function["Runtime"]]
    assert layer["CompatibleArchitectures"] == [arch]


def test_a_python_older_than_confstage_supports_is_one_line_and_no_zip(tmp_path: Path) -> None:
    """make layer PYTHON=3.9: one line naming the Python confstage needs, a non-zero exit, no traceback."""
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--python", "3.9", "--output", str(tmp_path / "x.zip")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert run.stdout == ""
    assert run.stderr.splitlines() == ["confstage needs Python >= 3.10: no layer for Python 3.9"]
    assert not (tmp_path / "x.zip").exists()


def test_bad_arguments_are_refused_before_anything_is_built(tmp_path: Path) -> None:
    """An unknown architecture or a malformed version is a usage error (exit 2), and no zip is written."""
    for args in (["--arch", "sparc"], ["--python", "3"], ["--python", "latest"]):
        run = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_layer.py"), "--output", str(tmp_path / "x.zip"), *args],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 2
        assert not (tmp_path / "x.zip").exists()
