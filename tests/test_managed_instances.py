"""Lambda Managed Instances: many processes on one /tmp make one fetch per stage, not one per process.

Real processes (``tests/_process_reader.py``), over HTTP through a counting proxy to the local endpoint, on one
cache directory: cold starts together, refreshes after the TTL, ``get_path`` downloads, and processes killed at
random mid-fetch (the kernel releases their locks; nobody waits past the fetch deadline, no file is torn).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confstage.stores.dynamodb import DynamoDBStore

from .faultproxy import FaultProxy

READER = str(Path(__file__).parent.parent / "benchmarks" / "_process_reader.py")
MODEL = bytes(range(256)) * 1200  # 300 kB


@pytest.fixture(name="proxy")
def fixture_proxy(table: DynamoDBStore, boto: Any, fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    """The PRD stage (a DynamoDB stage-key table, an S3 object) behind a proxy that answers after 0.3 s."""
    table.put("PRD", "db", "postgres://prd")
    s3 = boto("s3")
    s3.create_bucket(Bucket="objects")
    s3.put_object(Bucket="objects", Key="app/PRD/model.bin", Body=MODEL)
    proxy = fault_proxy(route=False, slow_seconds=0.3)
    proxy.fault = "slow"  # every answer takes 0.3 s: the processes' fetches overlap, as on a cold start
    return proxy


def environment(proxy: FaultProxy, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFSTAGE_")}
    env.update(
        AWS_ENDPOINT_URL=proxy.url,
        CONFSTAGE_TRANSPORT="lite",
        CONFSTAGE_TTL_JITTER="0",
        CONFSTAGE_FETCH_TIMEOUT="6",
        CONFSTAGE_READ_TIMEOUT="3",
    )
    env.update(extra)
    return env


def start(n: int, mode: str, cache: Path, env: dict[str, str], rounds: int = 1, pause: float = 0.0) -> list[Any]:
    return [
        subprocess.Popen(
            [sys.executable, READER, mode, str(cache), str(rounds), str(pause)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def results(processes: list[Any]) -> list[dict[str, Any]]:
    found = []
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-2000:]
        found.append(json.loads(out.strip().splitlines()[-1]))
    return found


def test_16_processes_starting_together_make_at_most_two_requests(proxy: FaultProxy, tmp_path: Path) -> None:
    """A cold start of 16 processes on one cache directory: 1-2 Queries (was 16), every process gets the value."""
    found = results(start(16, "value", tmp_path / "cache", environment(proxy)))
    assert [r["values"] for r in found] == [["postgres://prd"]] * 16
    assert proxy.requests <= 2


def test_16_processes_share_each_refresh(proxy: FaultProxy, tmp_path: Path) -> None:
    """16 long-lived processes, TTL 1 s, reading again after it: each TTL period costs at most 2 Queries."""
    env = environment(proxy, CONFSTAGE_TTL="1")
    found = results(start(16, "value", tmp_path / "cache", env, rounds=3, pause=1.2))
    assert all(r["values"] == ["postgres://prd"] * 3 for r in found)
    assert proxy.requests <= 2 * 3


def test_16_processes_download_one_object_at_most_twice(proxy: FaultProxy, tmp_path: Path) -> None:
    """get_path of one 300 kB object from 16 processes: at most 2 GetObject (was 7-14)."""
    found = results(start(16, "path", tmp_path / "cache", environment(proxy)))
    assert {r["values"][0] for r in found} == {MODEL.hex()[:16]}
    assert proxy.requests <= 2 + 1  # GetObject, plus the bucket's region asked once


@pytest.mark.parametrize(("n", "seed"), [(16, 1), (16, 2), (16, 3), (64, 4)])
def test_processes_killed_mid_fetch_hold_nobody_up(proxy: FaultProxy, tmp_path: Path, n: int, seed: int) -> None:
    """A third of the processes killed at random while the stage is fetched (one holds the lock) or written: every
    survivor has its value within the fetch deadline, and every file in the cache directory is whole."""
    proxy.slow_seconds = 1.0
    rng = random.Random(seed)
    cache = tmp_path / "cache"
    processes = start(n, "value", cache, environment(proxy))
    doomed = set(rng.sample(range(n), n // 3))
    started = time.monotonic()
    for index in sorted(doomed, key=lambda _: rng.random()):
        # a randomised schedule over the fetch (1 s at the proxy) and the write after it
        time.sleep(rng.uniform(0.0, 1.5 / len(doomed) * 2))
        processes[index].kill()
    survivors = [p for i, p in enumerate(processes) if i not in doomed]
    found = results(survivors)
    for index in doomed:
        processes[index].communicate(timeout=30)  # reaped, and its pipes closed
    assert [r["values"] for r in found] == [["postgres://prd"]] * len(survivors)
    assert max(r["first"] for r in found) < 6 + 4  # the fetch deadline, plus a process's start on a loaded machine
    assert time.monotonic() - started < 60
    for path in cache.iterdir():
        if path.suffix == ".json":
            json.loads(path.read_text())  # never torn: written to a temporary file, then renamed


def test_a_secret_never_reaches_tmp_in_plaintext_under_contention(
    proxy: FaultProxy, tmp_path: Path, table: DynamoDBStore, kms_key: str
) -> None:
    """A stage holding a secure value, read by 16 processes at once with a third killed: no file in the cache
    directory (or beside it) ever holds the plaintext; without a cache KMS key each process fetches the secret."""
    table.put("PRD", "password", "hunter2-plaintext", kms_key=kms_key)
    cache = tmp_path / "cache"
    processes = start(16, "value", cache, environment(proxy))
    rng = random.Random(7)
    doomed = set(rng.sample(range(16), 5))
    for index in sorted(doomed):
        time.sleep(rng.uniform(0.0, 0.2))
        processes[index].kill()
    found = results([p for i, p in enumerate(processes) if i not in doomed])
    for index in doomed:
        processes[index].communicate(timeout=30)
    assert [r["values"] for r in found] == [["postgres://prd"]] * 11
    (stage_file,) = [p for p in cache.iterdir() if p.suffix == ".json"]
    assert json.loads(stage_file.read_text())["withheld"] == ["password"]  # named, never held
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"hunter2-plaintext" not in path.read_bytes(), path
