"""``confstage check`` at scale: N keys x S stages on a DynamoDB table of a local moto server (a child process).

    python benchmarks/check_scale.py [--keys 500] [--stages DEV,TST,PRD] [--runs 3]

Prints the requests the check made (by operation) and its wall time, the CLI's own process included (click in
this process; the moto server apart, so it does not share the GIL). The figure in docs/cli.md comes from here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import LocalEndpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500)
    parser.add_argument("--stages", default="DEV,TST,PRD")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    stages = args.stages.split(",")
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    with LocalEndpoint() as endpoint, tempfile.TemporaryDirectory() as scratch:
        os.environ["AWS_ENDPOINT_URL"] = endpoint.url
        from click.testing import CliRunner

        from confstage.cli.app import cli
        from confstage.sources.dynamodb import DynamoDBSource
        from confstage.stores.dynamodb import DynamoDBStore
        from confstage.transport.botocore import BotocoreTransport, add_client_hook

        admin = BotocoreTransport()
        store = DynamoDBStore(DynamoDBSource("check-scale", transport=admin), admin)
        store.init()
        keys = [f"key_{i:04d}" for i in range(args.keys)]
        for stage in stages:
            store.put_many(stage, {key: str(i) for i, key in enumerate(keys)})
        manifest = Path(scratch, "manifest.json")
        manifest.write_text(json.dumps({"stages": stages, "keys": [{"key": k, "type": "int"} for k in keys]}))

        counts: Counter[str] = Counter()

        def hook(client: Any) -> None:
            client.meta.events.register(
                "before-send", lambda event_name, **_: counts.update([event_name.split(".", 1)[1]])
            )

        add_client_hook(hook)
        times = []
        for _ in range(args.runs):
            counts.clear()
            started = time.perf_counter()
            result = CliRunner().invoke(cli, ["check", "--manifest", str(manifest), "--source", store.url])
            times.append(time.perf_counter() - started)
            assert result.exit_code == 0, result.output
        print(
            f"confstage check: {args.keys} keys x {len(stages)} stages, dynamodb://: "
            f"{sum(counts.values())} requests ({dict(counts)}), median {statistics.median(times):.2f} s "
            f"(runs: {', '.join(f'{t:.2f}' for t in times)})"
        )


if __name__ == "__main__":
    main()
