"""A new process with a warm /tmp cache: configure the same source and cache_dir, ``get_many`` the stage.

Run by bench_backends.py as ``python _child_warm_tmp.py SPEC_JSON``; prints one JSON line:
``{"ms": ..., "requests": ..., "boto3_imported": ..., "ok": ...}``. ``ms`` covers ``configure`` and
``get_many`` (the interpreter start and ``import confstage`` are measured separately).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main(spec: dict[str, Any]) -> dict[str, Any]:
    import confstage
    from confstage.transport.botocore import add_client_hook

    latency_s = float(spec["latency_ms"]) / 1000.0
    requests = 0

    def before_send(**_: Any) -> None:
        nonlocal requests
        requests += 1
        if latency_s:
            time.sleep(latency_s)

    add_client_hook(lambda client: client.meta.events.register("before-send", before_send))
    keys: list[str] = spec["keys"]
    started = time.perf_counter()
    confstage.configure(sources=[spec["url"]], stage=spec["stage"], cache_dir=spec["cache_dir"])
    values = confstage.get_many(keys)
    elapsed = (time.perf_counter() - started) * 1000.0
    return {
        "ms": elapsed,
        "requests": requests,
        "boto3_imported": "boto3" in sys.modules,
        "ok": sorted(values) == sorted(keys),
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
