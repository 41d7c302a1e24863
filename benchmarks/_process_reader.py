"""One process of a Managed Instances environment (run by benchmarks/managed_instances.py and the tests).

``python _process_reader.py MODE CACHE_DIR ROUNDS PAUSE [GO_FILE]``: reads the ``db`` key of stage PRD (MODE
``value``, from ``dynamodb://config``) or the object ``model.bin`` (MODE ``path``, from ``s3://objects/app``),
``ROUNDS`` times with ``PAUSE`` seconds between (past the TTL: a refresh). With ``GO_FILE`` it imports confstage,
prints ``{"ready": true}`` and waits for that file to exist before the first read, so that N processes read
together. It prints a JSON line after each read (``{"read": i}``) and then one line: the seconds to the first
value (from the start, or from the go file), the values read, and the process's peak RSS in KiB (VmHWM: this
process image's own, not the parent's it was started from). The endpoint, transport and settings come from the
environment.
"""

from __future__ import annotations

import json
import os
import sys
import time


def peak_rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    mode, cache_dir, rounds, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    go = sys.argv[5] if len(sys.argv) > 5 else None
    started = time.perf_counter()
    from confstage import Config

    if mode == "value":
        client = Config("dynamodb://config", stage="PRD", cache_dir=cache_dir)
        read = lambda: client.get("db")  # noqa: E731
    else:
        client = Config("s3://objects/app", stage="PRD", cache_dir=cache_dir)
        read = lambda: client.get_path("model.bin").read_bytes().hex()[:16]  # noqa: E731
    def attempt() -> str:
        try:
            return str(read())
        except Exception as exc:  # noqa: BLE001 - a failed read is a result here (the benchmark counts them)
            return f"error: {type(exc).__name__}"

    if go is not None:
        print(json.dumps({"ready": True}), flush=True)
        while not os.path.exists(go):
            time.sleep(0.002)  # a start line for N processes: polled, there is nothing to wait on across them
        started = time.perf_counter()
    values = [attempt()]
    first = time.perf_counter() - started
    print(json.dumps({"read": 0}), flush=True)
    for i in range(1, rounds):
        time.sleep(pause)  # real processes, real time: the TTL of a process only passes by waiting
        values.append(attempt())
        print(json.dumps({"read": i}), flush=True)
    print(json.dumps({"first": first, "values": values, "rss_kib": peak_rss_kib()}), flush=True)


if __name__ == "__main__":
    main()
