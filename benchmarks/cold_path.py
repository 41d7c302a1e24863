"""The cold path of a runtime read, lite transport against raw boto3 (issue 13): fresh processes, interleaved.

    python benchmarks/cold_path.py                       # embedded moto server, every runtime read, 15 runs
    python benchmarks/cold_path.py --runs 25 --only dynamodb:Query --json out.json

Each sample is a new interpreter that imports what it needs and makes one request, timed from the parent
(process start to exit, so interpreter start-up is in every figure) with the child's own peak RSS, every
library run from compiled bytecode (a shared ``PYTHONPYCACHEPREFIX``, written by an uncounted first run):

    lite      import confstage + LiteTransport + the request
    boto3     import boto3 + a client + the same request (what a handler without confstage pays)
    baseline  ``python -c pass``

The endpoint is plain HTTP on loopback, so each contender is also charged what its first HTTPS connection
to AWS would cost before the handshake: lite ``ssl.create_default_context()`` (the system CA store), boto3
``load_verify_locations(certifi)`` on its urllib3 context (what urllib3 does when botocore connects).

The children also report whether boto3 or botocore got imported. Runs are interleaved (lite, boto3,
baseline, then the next run) so load on a shared machine hits every contender alike; medians are printed.
``measure()`` is the entry point for bench_backends.py once the sources read through the transport.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import LocalEndpoint

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.25  # issue 13: lite ≤ 0.25 x raw boto3 (wall)
TARGET_SAVED_MIB = 15.0  # issue 13: ≥ 15 MiB less peak memory

# One runtime read per source, in botocore's shapes; "CIPHERTEXT" is filled in from the seeded KMS key.
READS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "dynamodb:Query": (
        "dynamodb",
        "Query",
        "query",
        {
            "TableName": "cfg",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "stage", "#k": "key", "#a0": "value"},
            "ExpressionAttributeValues": {":s": {"S": "DEV"}},
            "ProjectionExpression": "#k, #a0",
            "ConsistentRead": False,
        },
    ),
    "s3:GetObject": ("s3", "GetObject", "get_object", {"Bucket": "cfg", "Key": "app/DEV/config.json"}),
    "ssm:GetParametersByPath": (
        "ssm",
        "GetParametersByPath",
        "get_parameters_by_path",
        {"Path": "/app/DEV", "WithDecryption": True, "Recursive": False},
    ),
    "secretsmanager:GetSecretValue": ("secretsmanager", "GetSecretValue", "get_secret_value", {"SecretId": "app/DEV"}),
    "kms:Decrypt": ("kms", "Decrypt", "decrypt", {"CiphertextBlob": "CIPHERTEXT"}),
}

_CHILD_COMMON = """
import json, os, sys, time
started = time.perf_counter()
service, operation, snake = os.environ["COLD_SERVICE"], os.environ["COLD_OPERATION"], os.environ["COLD_SNAKE"]
params = json.loads(os.environ["COLD_PARAMS"])
if "CiphertextBlob" in params:
    import base64
    params["CiphertextBlob"] = base64.b64decode(params["CiphertextBlob"])
"""
_CHILD_END = """
took = (time.perf_counter() - started) * 1000.0
marks = [started, *globals().get("phases", {}).values()]
steps = {name: (marks[i + 1] - marks[i]) * 1000.0 for i, name in enumerate(globals().get("phases", {}))}
sdk = sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore", "s3transfer", "urllib3"})
# VmHWM: this process's own peak (ru_maxrss survives exec and would report the parent's)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"in_process_ms": took, "maxrss_kib": peak, "sdk": sdk, "phases_ms": steps}))
"""
CHILDREN = {
    "lite": _CHILD_COMMON
    + """
import confstage
from confstage.transport import AwsRequest
from confstage.transport.lite import LiteTransport
phases = {"import": time.perf_counter()}
import ssl
ssl.create_default_context()
phases["tls context"] = time.perf_counter()
answer = LiteTransport().call(AwsRequest(service, operation, params))
if "Body" in answer:
    answer["Body"].read()
phases["request"] = time.perf_counter()
"""
    + _CHILD_END,
    "boto3": _CHILD_COMMON
    + """
import boto3
phases = {"import": time.perf_counter()}
client = boto3.client(service)
phases["client"] = time.perf_counter()
from botocore.httpsession import create_urllib3_context, get_cert_path
create_urllib3_context().load_verify_locations(get_cert_path(True))
phases["tls context"] = time.perf_counter()
answer = getattr(client, snake)(**params)
if "Body" in answer:
    answer["Body"].read()
phases["request"] = time.perf_counter()
"""
    + _CHILD_END,
    "baseline": _CHILD_COMMON.split("service, operation")[0] + _CHILD_END,
}


def seed(endpoint: str) -> str:
    """A stage of 20 keys in every backend; the base64 ciphertext of a KMS-encrypted value."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106  # the local endpoint's
        )

    values = {f"key{i:02d}": f"value-{i}" for i in range(20)}
    ddb = client("dynamodb")
    ddb.create_table(
        TableName="cfg",
        KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("stage", "key")],
        BillingMode="PAY_PER_REQUEST",
    )
    for key, value in values.items():
        ddb.put_item(TableName="cfg", Item={"stage": {"S": "DEV"}, "key": {"S": key}, "value": {"S": value}})
        client("ssm").put_parameter(Name=f"/app/DEV/{key}", Value=value, Type="String")
    client("s3").create_bucket(Bucket="cfg")
    client("s3").put_object(Bucket="cfg", Key="app/DEV/config.json", Body=json.dumps(values).encode())
    client("secretsmanager").create_secret(Name="app/DEV", SecretString=json.dumps(values))
    kms = client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    return base64.b64encode(kms.encrypt(KeyId=key_id, Plaintext=b"value")["CiphertextBlob"]).decode()


def child_env(endpoint: str, read: str, ciphertext: str) -> dict[str, str]:
    """The environment of a Lambda-like child: credentials and region in variables, the local endpoint."""
    service, operation, snake, params = READS[read]
    params = {k: (ciphertext if v == "CIPHERTEXT" else v) for k, v in params.items()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONFSTAGE_")) and "CA_BUNDLE" not in k}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled bytecode for every library, as a built package has
    env.update(
        {
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "confstage-bench-pycache"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": "cold-path-bench",
            "AWS_ENDPOINT_URL": endpoint,
            "COLD_SERVICE": service,
            "COLD_OPERATION": operation,
            "COLD_SNAKE": snake,
            "COLD_PARAMS": json.dumps(params),
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def run_child(contender: str, env: Mapping[str, str]) -> dict[str, Any]:
    """One fresh interpreter: its wall time seen from outside, and what it reported."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILDREN[contender]],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=ROOT,
        timeout=120,
    )
    wall_ms = (time.perf_counter() - started) * 1000.0
    if done.returncode != 0:
        raise RuntimeError(f"{contender} child failed: {done.stderr.strip()[-800:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall_ms"] = wall_ms
    return report


def measure(endpoint: str, ciphertext: str, *, runs: int, reads: Sequence[str]) -> dict[str, Any]:
    """Per read: median wall ms and peak MiB of each contender over ``runs`` interleaved fresh processes."""
    results: dict[str, Any] = {}
    for read in reads:
        env = child_env(endpoint, read, ciphertext)
        for contender in CHILDREN:  # warm-up: bytecode caches written, page cache hot; not counted
            run_child(contender, env)
        samples: dict[str, list[dict[str, Any]]] = {contender: [] for contender in CHILDREN}
        order = list(CHILDREN)
        for run in range(runs):
            for contender in order[run % len(order) :] + order[: run % len(order)]:
                samples[contender].append(run_child(contender, env))
        entry: dict[str, Any] = {}
        for contender, reports in samples.items():
            entry[contender] = {
                "wall_ms": statistics.median(r["wall_ms"] for r in reports),
                "in_process_ms": statistics.median(r["in_process_ms"] for r in reports),
                "peak_mib": statistics.median(r["maxrss_kib"] for r in reports) / 1024.0,
                "sdk_imported": sorted({m for r in reports for m in r["sdk"]}),
                "phases_ms": {
                    name: statistics.median(r["phases_ms"][name] for r in reports) for name in reports[0]["phases_ms"]
                },
                "runs": len(reports),
            }
        lite, boto = entry["lite"], entry["boto3"]
        entry["ratio_wall"] = lite["wall_ms"] / boto["wall_ms"]
        entry["ratio_in_process"] = lite["in_process_ms"] / boto["in_process_ms"]
        entry["saved_mib"] = boto["peak_mib"] - lite["peak_mib"]
        entry["targets_met"] = (
            entry["ratio_wall"] <= TARGET_RATIO and entry["saved_mib"] >= TARGET_SAVED_MIB and not lite["sdk_imported"]
        )
        results[read] = entry
    return results


def render(results: Mapping[str, Any]) -> str:
    """A table: per read, each contender's median wall/in-process ms and peak MiB, the ratios, the targets."""
    lines = [
        f"{'read':32} {'contender':9} {'wall ms':>8} {'in-proc ms':>10} {'peak MiB':>9}  {'SDK':8}  phases (ms)",
    ]
    for read, entry in results.items():
        for contender in CHILDREN:
            row = entry[contender]
            sdk = "yes" if row["sdk_imported"] else "none"
            figures = f"{row['wall_ms']:8.1f} {row['in_process_ms']:10.1f} {row['peak_mib']:9.1f}"
            phases = ", ".join(f"{name} {ms:.1f}" for name, ms in row["phases_ms"].items())
            lines.append(f"{read:32} {contender:9} {figures}  {sdk:8}  {phases}")
        verdict = "PASS" if entry["targets_met"] else "FAIL"
        lines.append(
            f"{'':32} lite/boto3 wall {entry['ratio_wall']:.2f}x (target ≤ {TARGET_RATIO}), "
            f"in-process {entry['ratio_in_process']:.2f}x, "
            f"{entry['saved_mib']:.1f} MiB less (target ≥ {TARGET_SAVED_MIB:g}): {verdict}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per contender and read (default 15)")
    parser.add_argument("--only", action="append", choices=sorted(READS), help="measure only these reads")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    with LocalEndpoint() as endpoint:
        ciphertext = seed(endpoint.url)
        results = measure(endpoint.url, ciphertext, runs=args.runs, reads=args.only or list(READS))
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version.split()[0], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
