"""import confstage stays cheap: no boto3, botocore, cryptography or CLI libraries until used."""

from __future__ import annotations

import json
import subprocess
import sys

import confstage

HEAVY = ["boto3", "botocore", "cryptography", "click", "rich", "moto", "cachetools", "confstage.cli", "pytest"]


def imported_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_confstage_imports_nothing_heavy() -> None:
    """A fresh interpreter importing confstage loads none of the heavy libraries."""
    modules = imported_after("import confstage")
    assert not {m for m in modules for h in HEAVY if m == h or m.startswith(h + ".")}


def test_env_get_still_imports_no_aws_libraries() -> None:
    """Reading env:// values never imports boto3 or cryptography."""
    modules = imported_after(
        "import os; os.environ.update(CONFSTAGE_STAGE='DEV', DEV_k='v', CONFSTAGE_CACHE_DIR='')\n"
        "import confstage; assert confstage.get('k') == 'v'"
    )
    assert "boto3" not in modules
    assert "botocore" not in modules
    assert "cryptography" not in modules


def test_public_names_are_exactly_all() -> None:
    """Every name in __all__ resolves, and a fresh package defines no other public name."""
    for name in confstage.__all__:
        assert getattr(confstage, name) is not None
    script = "import confstage; print(' '.join(n for n in vars(confstage) if not n.startswith('_')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    public = set(out.stdout.split())
    assert public - set(confstage.__all__) == {"annotations", "TYPE_CHECKING"}
