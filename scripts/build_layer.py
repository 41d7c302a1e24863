"""Build ``dist/confstage-layer-pyX.Y-ARCH.zip``: confstage and its runtime dependencies as an AWS Lambda layer.

    python scripts/build_layer.py                      # dist/confstage-layer-py3.12-x86_64.zip (make layer)
    python scripts/build_layer.py --python 3.13 --arch arm64   # dist/confstage-layer-py3.13-arm64.zip
    python scripts/build_layer.py --output dist/layer.zip      # a name of your own

The zip has ``python/`` at its root, as Lambda expects of a Python layer (it is unpacked into ``/opt`` and
``/opt/python`` is on ``sys.path``). It holds confstage (without its admin CLI) and the runtime
dependencies from ``pyproject.toml`` as wheels for the chosen Lambda runtime (``pip --platform
manylinux2014_<arch> --only-binary=:all: --python-version X.Y``), without boto3 and botocore, which
every Lambda Python runtime provides. The file is named for its Python version and architecture (as
Lambda names them: ``x86_64``, ``arm64``), so layers for two targets live side by side in ``dist/``.

Bytecode is for the target interpreter only: pip installs without compiling (it would compile with the
interpreter running this script, whose ``.pyc`` files the target never reads), then an interpreter of the
target version compiles everything when one is installed (``pythonX.Y`` on PATH, or pyenv's), with
unchecked hashes: ``/opt`` is read-only, so a layer without matching ``.pyc`` files recompiles every
module on every cold start. Without one, the layer ships no bytecode at all.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}  # the runtime's
ARCHES = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}
LEFT_OUT = ("cli",)  # confstage subpackages a Lambda never imports (the admin CLI needs click and rich)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same inputs give the same zip


def runtime_requirements(pyproject: Path) -> list[str]:
    """``[project].dependencies`` of pyproject.toml, less what the Lambda runtime provides."""
    text = pyproject.read_text(encoding="utf-8")
    block = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
    if block is None:
        raise SystemExit(f"no [project] dependencies in {pyproject}")
    requirements = re.findall(r'"([^"]+)"', block.group(1))
    return [r for r in requirements if _name(r) not in PROVIDED]


def minimum_python(pyproject: Path) -> tuple[int, int]:
    """The X.Y of ``requires-python = ">=X.Y"`` in pyproject.toml."""
    text = pyproject.read_text(encoding="utf-8")
    match = re.search(r'^requires-python\s*=\s*">=\s*(\d+)\.(\d+)', text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"no requires-python >= X.Y in {pyproject}")
    return int(match[1]), int(match[2])


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def install_dependencies(target: Path, requirements: list[str], python: str, arch: str) -> None:
    """pip-install wheels for the Lambda runtime's platform into ``target`` (no sdists, no build)."""
    if not requirements:
        return
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(target),
        "--platform",
        f"manylinux2014_{arch}",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--only-binary=:all:",
        "--no-compile",  # bytecode comes from the target's interpreter (compile_bytecode), or not at all
        "--upgrade",
        *requirements,
    ]
    subprocess.run(command, check=True)
    for name in PROVIDED:  # a dependency may pull one of them in: the runtime's copy must win
        for path in target.glob(f"{name.replace('-', '_')}*"):
            _remove(path)
    _remove(target / "bin")  # console scripts of the dependencies: nothing in a layer runs them


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def copy_confstage(target: Path) -> None:
    """The confstage package, as the wheel ships it, less the admin CLI."""
    source = ROOT / "confstage"
    shutil.copytree(
        source,
        target / "confstage",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", *LEFT_OUT),
    )


def interpreter(python: str) -> str | None:
    """An installed interpreter of version ``python`` (X.Y) that runs, or None (pyenv's shims may not)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python:
        return sys.executable
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(v / "bin" / f"python{python}") for v in sorted(pyenv.glob(f"{python}.*"), reverse=True)]
    candidates.append(shutil.which(f"python{python}") or "")
    for binary in filter(None, candidates):
        probe = subprocess.run([binary, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.decode().strip() == str(tuple(map(int, python.split(".")))):
            return binary
    return None


def compile_bytecode(target: Path, python: str) -> bool:
    """Compile every module with the target version's interpreter; False when none is installed."""
    binary = interpreter(python)
    if binary is None:
        print(f"no Python {python} here: the layer ships without bytecode", file=sys.stderr)
        return False
    subprocess.run(
        [binary, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(target)],
        check=True,
    )
    return True


def foreign_bytecode(target: Path, python: str) -> list[Path]:
    """The ``.pyc`` files under ``target`` that an interpreter of version ``python`` would not read."""
    tag = f".cpython-{python.replace('.', '')}.pyc"
    return [path for path in target.rglob("*.pyc") if not path.name.endswith(tag)]


def write_zip(layer: Path, output: Path) -> None:
    """Zip ``layer`` (which holds ``python/``) deterministically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(layer.rglob("*")):
            if path.is_dir():
                continue
            info = zipfile.ZipInfo(str(path.relative_to(layer)), date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(output)


def build(python: str, arch: str, output: Path) -> Path:
    """Build the layer zip; returns its path."""
    with tempfile.TemporaryDirectory(prefix="confstage-layer-") as scratch:
        layer = Path(scratch)
        site = layer / "python"
        site.mkdir()
        install_dependencies(site, runtime_requirements(ROOT / "pyproject.toml"), python, arch)
        copy_confstage(site)
        compile_bytecode(site, python)
        for path in foreign_bytecode(site, python):  # a wheel that ships its own .pyc files
            path.unlink()
        write_zip(layer, output)
    return output


def lambda_architecture(arch: str) -> str:
    """Lambda's name for an architecture: ``x86_64`` or ``arm64``."""
    return "arm64" if ARCHES[arch.lower()] == "aarch64" else "x86_64"


def default_output(python: str, arch: str) -> Path:
    """``dist/confstage-layer-py3.12-arm64.zip``: the layer's Python version and Lambda architecture in its name."""
    return ROOT / "dist" / f"confstage-layer-py{python}-{lambda_architecture(arch)}.zip"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=os.environ.get("PYTHON") or "3.12", help="Lambda's Python X.Y")
    parser.add_argument("--arch", default=os.environ.get("ARCH") or "x86_64", help="x86_64 or arm64")
    parser.add_argument("--output", type=Path, help="the zip to write (default: dist/confstage-layer-pyX.Y-ARCH.zip)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d{1,2}", args.python):
        parser.error(f"--python must be a version like 3.12, got {args.python!r}")
    arch = ARCHES.get(args.arch.lower())
    if arch is None:
        parser.error(f"--arch must be x86_64 or arm64, got {args.arch!r}")
    needed = minimum_python(ROOT / "pyproject.toml")
    if tuple(map(int, args.python.split("."))) < needed:
        print(f"confstage needs Python >= {needed[0]}.{needed[1]}: no layer for Python {args.python}", file=sys.stderr)
        return 1
    output = args.output or default_output(args.python, args.arch)
    output = build(args.python, arch, output)
    size = output.stat().st_size
    print(f"{output} ({size / 2**20:.1f} MiB) for Python {args.python} on {lambda_architecture(arch)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
