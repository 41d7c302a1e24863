"""The cold path of ``appconfig://`` (issue 22): a fresh Lambda-like process beside raw boto3 doing the same two calls.

    python benchmarks/cold_path_appconfig.py               # the AppConfigData emulator, 15 runs
    python benchmarks/cold_path_appconfig.py --runs 7 --json out.json

The same harness as ``cold_path.py`` (fresh interpreters, interleaved contenders, medians, the TLS context charged),
against ``confstage.testing.AppConfigServer`` (moto has no AppConfigData): a profile of KEYS keys deployed to the
environment ``dev``. Contenders: confstage over lite and over botocore (``Config("appconfig://…", stage="DEV")
.get(key)``: StartConfigurationSession + GetLatestConfiguration, the document parsed), raw boto3 making the same
two calls and parsing the same document, and a bare interpreter. Target: lite ≤ 0.3x raw boto3's wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cold_path
from cold_path import _BOTOCORE_TLS, _END, _START, KEYS, Read

from confstage.testing import AppConfigServer

TARGET_RATIO = 0.3
APPLICATION, PROFILE = "coldpath", "settings"
READ = Read(
    "AppConfigData session + poll",
    f"appconfig://{APPLICATION}/{PROFILE}?via=api",
    "appconfigdata",
    "start_configuration_session",
    {},
)
BOTO3 = (
    _START
    + f"""
import boto3
phases = {{"import": time.perf_counter()}}
client = boto3.client("appconfigdata")
phases["client"] = time.perf_counter()
token = client.start_configuration_session(
    ApplicationIdentifier="{APPLICATION}", EnvironmentIdentifier="dev", ConfigurationProfileIdentifier="{PROFILE}"
)["InitialConfigurationToken"]
answer = client.get_latest_configuration(ConfigurationToken=token)
json.loads(answer["Configuration"].read())  # the document, parsed as confstage parses it
phases["request"] = time.perf_counter()
"""
    + _BOTOCORE_TLS
    + _END
)


def measure(runs: int) -> list[dict[str, Any]]:
    """One row per contender (``cold_path``'s shape), medians over ``runs`` interleaved fresh processes."""
    scratch = Path(tempfile.mkdtemp(prefix="confstage-cold-appconfig-"))
    saved = cold_path.CHILDREN["boto3"]
    cold_path.READS["appconfig"] = READ
    cold_path.CHILDREN["boto3"] = BOTO3
    try:
        with AppConfigServer() as server:
            server.deploy(APPLICATION, "dev", PROFILE, {f"key{i:02d}": f"value-{i}" for i in range(KEYS)})
            env = cold_path.child_env(server.endpoint, READ, "")
            return cold_path._measure_one("appconfig", env, runs, scratch)
    finally:
        cold_path.CHILDREN["boto3"] = saved
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per contender (default 15)")
    parser.add_argument("--json", type=Path, help="write the rows and the verdict here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    rows = measure(args.runs)
    print(cold_path.render(rows))
    (verdict,) = cold_path.verdicts(rows)
    met = verdict["lite_sdk_free"] and verdict["ratio_wall"] <= TARGET_RATIO
    print(
        f"  {'PASS' if met else 'FAIL'}  appconfig lite/boto3 wall {verdict['ratio_wall']:.2f}x "
        f"(target ≤ {TARGET_RATIO}x, no SDK)"
    )
    if args.json:
        document = {"rows": rows, "verdict": {**verdict, "status": "PASS" if met else "FAIL"}}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
