"""``make layer``: a Lambda layer zip with confstage and its runtime wheels, importable on a bare interpreter.

The layer is built for this interpreter's version (so that its compiled extension and bytecode load
here) and for arm64, then unpacked and used with ``python -S`` and only the layer on ``PYTHONPATH``,
as Lambda's runtime would see ``/opt/python``. Building downloads the wheels from PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"
MAX_BYTES = 15 * 2**20


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


def test_an_arm64_layer_carries_aarch64_wheels(tmp_path: Path) -> None:
    """--arch arm64 installs manylinux aarch64 builds of the compiled dependencies."""
    output = build(tmp_path, "--python", VERSION, "--arch", "arm64")
    with zipfile.ZipFile(output) as archive:
        wheel_tags = [archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/WHEEL")]
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
    assert any("aarch64" in tags for tags in wheel_tags)
    assert extensions
    assert all("x86_64" not in name for name in extensions)


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
