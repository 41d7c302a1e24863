"""Lambda Managed Instances: N processes of one execution environment on one /tmp, beside a per-process cache.

    python benchmarks/managed_instances.py                 # N = 1, 16, 64; an embedded moto server
    python benchmarks/managed_instances.py --n 1 16 --json out.json

Each process (``_process_reader.py``) starts a fresh interpreter and imports confstage; then all N read one
DynamoDB stage together (a start line), as an environment's processes do after their init, and read it again once
their TTL (1 s) has passed. Time to the first value is counted from that start line. Requests go
through a counting proxy on 127.0.0.1 that adds ``--latency`` (30 ms) to each answer, as a round trip to AWS would.
Contenders, interleaved per N:

    shared                confstage, one cache directory for all N (lite transport): single flight across processes
    per-process           confstage with the /tmp cache off: every process asks AWS, as any per-process cache does
    shared-botocore       shared, with CONFSTAGE_TRANSPORT=botocore (boto3's memory in the process that fetches)
    per-process-botocore  per-process, with botocore: the memory every process pays for boto3

Reported per contender and N: AWS requests per stage for the cold start and for the refresh, each process's time to
its first value (median and slowest), and memory: the peak RSS of a process (median, largest) and of all N.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from _harness import LocalEndpoint

READER = str(Path(__file__).with_name("_process_reader.py"))
TTL = 1.0


class CountingProxy:
    """Forwards to ``upstream`` after ``latency`` seconds; counts the requests."""

    def __init__(self, upstream: str, latency: float) -> None:
        parts = urlsplit(upstream)
        target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests = 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                with lock:
                    proxy.requests += 1
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(latency)  # the round trip to AWS this stands for
                upstream_conn = http.client.HTTPConnection(*target, timeout=30)
                upstream_conn.request(self.command, self.path, body, dict(self.headers))
                answer = upstream_conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream_conn.close()

            do_GET = do_POST = do_PUT = do_HEAD = _forward  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def seed(endpoint: str) -> None:
    import boto3

    dynamodb = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the local endpoint's
    )
    dynamodb.create_table(
        TableName="config",
        KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "stage", "AttributeType": "S"},
            {"AttributeName": "key", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(20):
        dynamodb.put_item(
            TableName="config",
            Item={"stage": {"S": "PRD"}, "key": {"S": "db" if i == 0 else f"key{i}"}, "value": {"S": f"v{i}"}},
        )


def run(contender: str, n: int, proxy: CountingProxy) -> dict[str, Any]:
    """N processes started together, each reading the stage cold and once more after its TTL."""
    with tempfile.TemporaryDirectory(prefix="confstage-mi-") as scratch:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSTAGE_")}
        env.update(
            AWS_ENDPOINT_URL=proxy.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S105 - the local endpoint's
            AWS_DEFAULT_REGION="us-east-1",
            CONFSTAGE_TRANSPORT="botocore" if "botocore" in contender else "lite",
            CONFSTAGE_TTL=str(TTL),
            CONFSTAGE_TTL_JITTER="0",
        )
        cache = "" if contender.startswith("per-process") else os.path.join(scratch, "cache")
        go = os.path.join(scratch, "go")
        processes = [
            subprocess.Popen(
                [sys.executable, READER, "value", cache, "2", str(TTL * 1.5), go],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        for process in processes:  # every process started and imported: they read together
            assert process.stdout is not None
            if json.loads(process.stdout.readline() or "{}").get("ready") is not True:
                raise RuntimeError(f"a reader did not start: {process.communicate()[1][-500:]}")
        before = proxy.requests
        Path(go).touch()
        for process in processes:  # each one's first read is done, none has refreshed yet (the TTL is 1 s)
            assert process.stdout is not None
            process.stdout.readline()
        cold = proxy.requests - before
        found = []
        for process in processes:
            out, err = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"a reader failed: {err[-500:]}")
            found.append(json.loads(out.strip().splitlines()[-1]))
    firsts = [r["first"] * 1000 for r in found]
    rss = [r["rss_kib"] / 1024 for r in found]
    return {
        "contender": contender,
        "n": n,
        "cold_requests": cold,
        "refresh_requests": proxy.requests - before - cold,
        "first_ms_median": round(statistics.median(firsts), 1),
        "first_ms_max": round(max(firsts), 1),
        "failed_reads": sum(str(v).startswith("error") for r in found for v in r["values"]),
        "rss_mib": round(statistics.median(rss), 1),
        "rss_max_mib": round(max(rss), 1),
        "rss_total_mib": round(sum(rss), 1),
    }


def render(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| processes | contender | requests, cold | requests, refresh | first value (median / slowest) "
        "| failed reads | peak RSS a process (median / largest) | all N |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['n']} | {row['contender']} | {row['cold_requests']} | {row['refresh_requests']} "
            f"| {row['first_ms_median']:.0f} / {row['first_ms_max']:.0f} ms | {row['failed_reads']} "
            f"| {row['rss_mib']:.1f} / {row['rss_max_mib']:.1f} MiB "
            f"| {row['rss_total_mib']:.0f} MiB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 16, 64], help="process counts")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds the proxy adds to each answer")
    parser.add_argument(
        "--contenders", nargs="+", default=["shared", "per-process", "shared-botocore", "per-process-botocore"]
    )
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    rows = []
    with LocalEndpoint() as endpoint:
        seed(endpoint.url)
        proxy = CountingProxy(endpoint.url, args.latency)
        try:
            for n in args.n:
                for contender in args.contenders:  # interleaved: every contender at one N, then the next N
                    rows.append(run(contender, n, proxy))
        finally:
            proxy.stop()
    print(render(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
