"""The cold path per runtime source and transport (issue 13): fresh processes, interleaved, medians.

    python benchmarks/cold_path.py                        # embedded moto server, every source, 15 runs
    python benchmarks/cold_path.py --runs 25 --only dynamodb-stage-key --json out.json

Each sample is a new interpreter set up as Lambda sets one up (credentials and region in variables,
``AWS_LAMBDA_FUNCTION_NAME``, an empty /tmp cache directory of its own), timed from the parent (process start
to exit, so interpreter start-up is in every figure) with the child's own peak RSS. Every library runs from
compiled bytecode (a shared ``PYTHONPYCACHEPREFIX``, written by an uncounted first run). Per source:

    lite      ``import confstage`` + ``Config(url, stage="DEV").get(key)``, CONFSTAGE_TRANSPORT=lite
    botocore  the same with CONFSTAGE_TRANSPORT=botocore
    boto3     ``import boto3`` + a client + the same request(s) confstage makes (what a handler without it pays)
    baseline  ``python -c pass``

The endpoint is plain HTTP on loopback, so each contender is also charged the trust its first HTTPS connection
to AWS would load: lite its own context (``transport.lite.trust.client_context``: where the system's hashed CA
directory covers its bundle, no CA up front, so it is also charged the one file its handshake would read, Amazon
Root CA 1, where AWS's chains end; else the system bundle, parsed whole); botocore and boto3
``load_verify_locations(certifi)`` on a urllib3 context (what urllib3 does when botocore connects). The
handshake itself, alike for all, is not charged.

The children report whether boto3 or botocore got imported. Runs are interleaved (each run rotates the order of
the contenders) so load on a shared machine hits every contender alike. ``measure()`` returns one row per
source and contender; bench_backends.py prints them as its "cold path per source and transport" table.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import LocalEndpoint

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.25  # issue 13: DynamoDB, lite ≤ 0.25 x raw boto3 (wall)
TARGET_SAVED_MIB = 15.0  # issue 13: DynamoDB, ≥ 15 MiB less peak memory
FUNCTION = "cold-path-bench"
AWS_ROOT = "ce5e74ef.0"  # Amazon Root CA 1 (C=US, O=Amazon), named by OpenSSL's subject hash
NAME = "coldpath"  # the table, bucket, parameter path and secret seeded for the cold path
KEYS = 20


class Read(NamedTuple):
    """One source's cold read: confstage's URL, and the same request(s) made with raw boto3."""

    title: str
    url: str
    service: str
    method: str  # boto3's
    params: dict[str, Any]
    next_page: str = ""  # the response field raw boto3 follows to the next page, as confstage does


# Named as bench_backends.py names the sources.
READS: dict[str, Read] = {
    "dynamodb-stage-key": Read(
        "DynamoDB Query (stage)",
        f"dynamodb://{NAME}",
        "dynamodb",
        "query",
        {
            "TableName": NAME,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "stage", "#k": "key", "#a0": "value"},
            "ExpressionAttributeValues": {":s": {"S": "DEV"}},
            "ProjectionExpression": "#k, #a0",
            "ConsistentRead": False,
        },
    ),
    "s3-document": Read(
        "S3 GetObject (document)",
        f"s3://{NAME}/app?layout=document",
        "s3",
        "get_object",
        {"Bucket": NAME, "Key": "app/DEV/config.json"},
    ),
    "ssm": Read(
        "SSM GetParametersByPath",
        f"ssm:///{NAME}",
        "ssm",
        "get_parameters_by_path",
        {"Path": f"/{NAME}/DEV", "Recursive": True, "WithDecryption": True, "MaxResults": 10},
        next_page="NextToken",
    ),
    "secretsmanager": Read(
        "Secrets Manager GetSecretValue",
        f"secretsmanager://{NAME}",
        "secretsmanager",
        "get_secret_value",
        {"SecretId": f"{NAME}/DEV"},
    ),
    "kms-env": Read(
        "KMS Decrypt (kms-env)",
        "kms-env://",
        "kms",
        "decrypt",
        {"CiphertextBlob": "CIPHERTEXT", "EncryptionContext": {"LambdaFunctionName": FUNCTION}},
    ),
}
CONTENDERS = {
    "lite": "confstage, CONFSTAGE_TRANSPORT=lite",
    "botocore": "confstage, CONFSTAGE_TRANSPORT=botocore",
    "boto3": "raw boto3, the same request(s)",
    "baseline": "bare interpreter (python -c pass)",
}

_START = "import json, os, sys, time\nstarted = time.perf_counter()\n"
_END = """
marks = [started, *phases.values()]
steps = {name: (marks[i + 1] - marks[i]) * 1000.0 for i, name in enumerate(phases)}
sdk = sorted({m.split(".")[0] for m in sys.modules} & {"boto3", "botocore", "s3transfer", "urllib3"})
# VmHWM: this process's own peak (ru_maxrss survives exec and would report the parent's)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
took = (time.perf_counter() - started) * 1000.0
print(json.dumps({"in_process_ms": took, "maxrss_kib": peak, "sdk": sdk, "phases_ms": steps}))
"""
_BOTOCORE_TLS = """
from botocore.httpsession import create_urllib3_context, get_cert_path
create_urllib3_context().load_verify_locations(get_cert_path(True))
phases["tls context"] = time.perf_counter()
"""
_CONFSTAGE = """
import confstage
phases = {"import": time.perf_counter()}
value = confstage.Config(os.environ["COLD_URL"], stage="DEV").get(os.environ["COLD_KEY"])
phases["fetch"] = time.perf_counter()
"""
CHILDREN = {
    "lite": _START
    + _CONFSTAGE
    + """
from confstage.transport.lite.trust import client_context
context = client_context(os.environ)  # lite's, as its first https connection makes it
if os.environ["COLD_AWS_ROOT"] and not context.cert_store_stats()["x509_ca"]:
    context.load_verify_locations(cafile=os.environ["COLD_AWS_ROOT"])  # the CA a lazy context reads in the handshake
phases["tls context"] = time.perf_counter()
"""
    + _END,
    "botocore": _START + _CONFSTAGE + _BOTOCORE_TLS + _END,
    "boto3": _START
    + """
import boto3
phases = {"import": time.perf_counter()}
client = boto3.client(os.environ["COLD_SERVICE"])
phases["client"] = time.perf_counter()
params, token = json.loads(os.environ["COLD_PARAMS"]), os.environ["COLD_TOKEN"]
if "CiphertextBlob" in params:
    import base64
    params["CiphertextBlob"] = base64.b64decode(params["CiphertextBlob"])
while True:
    answer = getattr(client, os.environ["COLD_METHOD"])(**params)
    if "Body" in answer:
        json.loads(answer["Body"].read())  # the stage document, parsed as confstage parses it
    if "SecretString" in answer:
        json.loads(answer["SecretString"])
    if not (token and answer.get(token)):
        break
    params[token] = answer[token]
phases["request"] = time.perf_counter()
"""
    + _BOTOCORE_TLS
    + _END,
    "baseline": _START + "phases = {}\n" + _END,
}


def _client(endpoint: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106  # the local endpoint's
    )


def seed(endpoint: str) -> str:
    """Stage DEV of every source with KEYS keys; the base64 ciphertext kms-env reads (key00's value)."""
    values = {f"key{i:02d}": f"value-{i}" for i in range(KEYS)}
    ddb = _client(endpoint, "dynamodb")
    ddb.create_table(
        TableName=NAME,
        KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("stage", "key")],
        BillingMode="PAY_PER_REQUEST",
    )
    ssm = _client(endpoint, "ssm")
    for key, value in values.items():
        ddb.put_item(TableName=NAME, Item={"stage": {"S": "DEV"}, "key": {"S": key}, "value": {"S": value}})
        ssm.put_parameter(Name=f"/{NAME}/DEV/{key}", Value=value, Type="String")
    s3 = _client(endpoint, "s3")
    s3.create_bucket(Bucket=NAME)
    s3.put_object(Bucket=NAME, Key="app/DEV/config.json", Body=json.dumps(values).encode())
    _client(endpoint, "secretsmanager").create_secret(Name=f"{NAME}/DEV", SecretString=json.dumps(values))
    kms = _client(endpoint, "kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"value-0", EncryptionContext={"LambdaFunctionName": FUNCTION})
    return base64.b64encode(blob["CiphertextBlob"]).decode()


def child_env(endpoint: str, read: Read, ciphertext: str) -> dict[str, str]:
    """The environment of a Lambda-like child: credentials and region in variables, the local endpoint."""
    params = {k: (ciphertext if v == "CIPHERTEXT" else v) for k, v in read.params.items()}
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CONFSTAGE_", "COLD_", "DEV_"))
        and not k.endswith(("CA_BUNDLE", "_PROXY", "_proxy"))
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled bytecode for every library, as a built package has
    env.update(
        {
            "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "confstage-bench-pycache"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
            "AWS_ENDPOINT_URL": endpoint,
            "DEV_key00": ciphertext,  # kms-env://
            "COLD_URL": read.url,
            "COLD_KEY": "key00",
            "COLD_SERVICE": read.service,
            "COLD_METHOD": read.method,
            "COLD_PARAMS": json.dumps(params),
            "COLD_TOKEN": read.next_page,
            "PYTHONPATH": str(ROOT),
        }
    )
    env["COLD_AWS_ROOT"] = aws_root(env)
    return env


def aws_root(env: Mapping[str, str]) -> str:
    """Amazon Root CA 1's file in the hashed directory lite's TLS context looks CAs up in ('' when there is
    none): the one CA a lazy context reads during its first handshake with AWS, whose chains end there."""
    from confstage.transport.lite.trust import locations

    found = locations(env)
    lazy = found.capath.split(os.pathsep) if found.cafile is None and found.capath else []
    return next((path for path in (os.path.join(d, AWS_ROOT) for d in lazy) if os.path.exists(path)), "")


def run_child(contender: str, env: Mapping[str, str], scratch: Path) -> dict[str, Any]:
    """One fresh interpreter with an empty /tmp cache: its wall time seen from outside, and what it reported."""
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    extra = {"CONFSTAGE_TRANSPORT": contender} if contender in ("lite", "botocore") else {}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILDREN[contender]],
        capture_output=True,
        text=True,
        env={**env, **extra, "CONFSTAGE_CACHE_DIR": str(cache)},
        cwd=ROOT,
        timeout=120,
    )
    wall_ms = (time.perf_counter() - started) * 1000.0
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{contender} child failed: {done.stderr.strip()[-800:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    report["wall_ms"] = wall_ms
    return report


@contextmanager
def _endpoint(url: str | None) -> Iterator[str]:
    if url is not None:
        yield url
        return
    with LocalEndpoint() as endpoint:
        yield endpoint.url


def measure(
    endpoint: str | None = None,
    *,
    runs: int = 15,
    sources: Sequence[str] | None = None,
    progress: Callable[[str], object] | None = None,
) -> list[dict[str, Any]]:
    """One row per source and contender: medians over ``runs`` interleaved fresh processes.

    ``endpoint``: a moto server to seed (None: an embedded one for the duration). Each row holds ``source``,
    ``title``, ``contender``, ``label``, ``wall_ms``, ``in_process_ms``, ``peak_mib``, ``sdk_imported``,
    ``botocore_imported``, ``phases_ms`` and ``runs``.
    """
    rows: list[dict[str, Any]] = []
    scratch = Path(tempfile.mkdtemp(prefix="confstage-cold-"))
    try:
        with _endpoint(endpoint) as url:
            ciphertext = seed(url)
            for name in sources or list(READS):
                if progress is not None:
                    progress(name)
                rows.extend(_measure_one(name, child_env(url, READS[name], ciphertext), runs, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def _measure_one(name: str, env: Mapping[str, str], runs: int, scratch: Path) -> list[dict[str, Any]]:
    order = list(CHILDREN)
    for contender in order:  # warm-up: bytecode caches written, page cache hot; not counted
        run_child(contender, env, scratch)
    samples: dict[str, list[dict[str, Any]]] = {contender: [] for contender in order}
    for run in range(runs):
        for contender in order[run % len(order) :] + order[: run % len(order)]:
            samples[contender].append(run_child(contender, env, scratch))
    rows = []
    for contender, reports in samples.items():
        sdk = sorted({m for r in reports for m in r["sdk"]})
        rows.append(
            {
                "source": name,
                "title": READS[name].title,
                "contender": contender,
                "label": CONTENDERS[contender],
                "wall_ms": statistics.median(r["wall_ms"] for r in reports),
                "in_process_ms": statistics.median(r["in_process_ms"] for r in reports),
                "peak_mib": statistics.median(r["maxrss_kib"] for r in reports) / 1024.0,
                "sdk_imported": sdk,
                "botocore_imported": "botocore" in sdk,
                "phases_ms": {
                    p: statistics.median(r["phases_ms"][p] for r in reports) for p in reports[0]["phases_ms"]
                },
                "runs": len(reports),
            }
        )
    return rows


def verdicts(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per source: lite against raw boto3 (wall ratio, MiB saved) and whether lite stayed free of the SDK;
    DynamoDB's figures checked against the issue's targets (never adjusted to pass)."""
    found: list[dict[str, Any]] = []
    for name in dict.fromkeys(row["source"] for row in rows):
        by = {row["contender"]: row for row in rows if row["source"] == name}
        lite, boto3 = by["lite"], by["boto3"]
        entry = {
            "source": name,
            "ratio_wall": lite["wall_ms"] / boto3["wall_ms"],
            "ratio_botocore_transport": lite["wall_ms"] / by["botocore"]["wall_ms"],
            "saved_mib": boto3["peak_mib"] - lite["peak_mib"],
            "lite_sdk_free": not lite["sdk_imported"],
        }
        met = entry["lite_sdk_free"]
        if name == "dynamodb-stage-key":
            met = met and entry["ratio_wall"] <= TARGET_RATIO and entry["saved_mib"] >= TARGET_SAVED_MIB
        entry["status"] = "PASS" if met else "FAIL"
        found.append(entry)
    return found


def render(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table: per source, each contender's median wall/in-process ms and peak MiB, then the verdicts."""
    runs = min((int(row["runs"]) for row in rows), default=0)
    lines = [
        f"cold path per source and transport (fresh processes, medians of {runs} interleaved runs; "
        "import + first fetch, TLS context charged)",
        f"  {'source':18} {'contender':9} {'wall ms':>8} {'in-proc ms':>10} {'peak MiB':>9}  "
        f"{'botocore':8}  phases (ms)",
    ]
    for row in rows:
        figures = f"{row['wall_ms']:8.1f} {row['in_process_ms']:10.1f} {row['peak_mib']:9.1f}"
        phases = ", ".join(f"{name} {ms:.1f}" for name, ms in row["phases_ms"].items())
        imported = "yes" if row["botocore_imported"] else "no"
        lines.append(f"  {row['source']:18} {row['contender']:9} {figures}  {imported:8}  {phases}")
    for entry in verdicts(rows):
        target = (
            f" (targets: ≤ {TARGET_RATIO}x, ≥ {TARGET_SAVED_MIB:g} MiB, no SDK)"
            if entry["source"] == "dynamodb-stage-key"
            else " (target: no SDK)"
        )
        lines.append(
            f"  {entry['status']:4}  {entry['source']:18} lite/boto3 wall {entry['ratio_wall']:.2f}x, "
            f"lite/botocore transport {entry['ratio_botocore_transport']:.2f}x, "
            f"{entry['saved_mib']:.1f} MiB less than boto3, SDK on the lite path: "
            f"{'none' if entry['lite_sdk_free'] else 'yes'}{target}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per contender and source (default 15)")
    parser.add_argument("--only", action="append", choices=sorted(READS), help="measure only these sources")
    parser.add_argument("--json", type=Path, help="write the rows and verdicts here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    started, load_before = time.perf_counter(), os.getloadavg()
    rows = measure(runs=args.runs, sources=args.only, progress=lambda n: print(f"measuring {n} ...", file=sys.stderr))
    print(render(rows))
    load = ", ".join(f"{before:.1f} → {after:.1f}" for before, after in zip(load_before, os.getloadavg(), strict=True))
    print(f"took {time.perf_counter() - started:.0f} s; load average (1, 5, 15 min) {load}", file=sys.stderr)
    if args.json:
        meta = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": {"before": list(load_before), "after": list(os.getloadavg())},  # 1, 5, 15 min
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        document = {"meta": meta, "rows": rows, "verdicts": verdicts(rows)}
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
