"""Measuring tools for the benchmark: summaries, the request probe, timers, import time, the local endpoint.

Only the standard library at import time: the child processes that measure ``import confstage`` and a
warm /tmp cache must not pay for anything the parent needs.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import timeit
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "LocalEndpoint",
    "Probe",
    "import_ms",
    "ns_interleaved",
    "ns_per_call",
    "summarize",
    "timed_ms",
]


def summarize(samples: Sequence[float], unit: str) -> dict[str, Any]:
    """Median and p99 (nearest rank: the maximum below 100 samples) with the sample count."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(0.99 * len(ordered)))
    return {
        "median": statistics.median(ordered),
        "p99": ordered[rank - 1],
        "min": ordered[0],
        "n": len(ordered),
        "unit": unit,
    }


class Probe:
    """A botocore ``before-send`` handler: counts every HTTP request and sleeps ``latency_ms`` before it.

    The same probe is attached to confstage's clients (``transport.botocore.add_client_hook``) and to the raw
    boto3 and Powertools clients, so every contender pays the same simulated round trip.
    """

    def __init__(self, latency_ms: float = 0.0) -> None:
        self.latency_s = latency_ms / 1000.0
        self.requests = 0
        self.operations: Counter[str] = Counter()

    def reset(self) -> None:
        self.requests = 0
        self.operations.clear()

    def attach(self, client: Any) -> None:
        """Register on a boto3 client (for a resource, pass ``resource.meta.client``)."""
        client.meta.events.register("before-send", self._before_send)

    def _before_send(self, event_name: str = "", **_: Any) -> None:
        # event_name is "before-send.<service>.<Operation>"; retries are sent, and counted, again.
        self.requests += 1
        self.operations[event_name.split(".", 1)[-1]] += 1
        if self.latency_s:
            time.sleep(self.latency_s)


def timed_ms(run: Callable[[], object], repeats: int, *, setup: Callable[[], object] | None = None) -> list[float]:
    """Wall time of ``run()`` in ms, ``repeats`` times, after ``setup()`` (untimed) each time."""
    samples: list[float] = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def ns_per_call(stmt: str, namespace: Mapping[str, Any], *, repeats: int, target_s: float) -> tuple[list[float], int]:
    """ns per execution of ``stmt`` (timeit loops, gc off): one figure per repeat, and the loop count used."""
    timer = timeit.Timer(stmt, globals=dict(namespace))
    number = 1
    for _ in range(30):  # calibrate: the smallest power of ten whose loop takes at least target_s / 10
        if timer.timeit(number) >= target_s / 10 or number >= 10_000_000:
            break
        number *= 10
    per_call = timer.timeit(number) / number
    number = max(1, min(50_000_000, int(target_s / per_call))) if per_call > 0 else number
    return [t / number * 1e9 for t in timer.repeat(repeats, number)], number


def ns_interleaved(
    candidates: Mapping[str, tuple[str, Mapping[str, Any]]], *, repeats: int, target_s: float
) -> dict[str, tuple[list[float], int]]:
    """ns per execution of each candidate's statement, repeats interleaved (A B C, A B C, ...).

    Interleaving makes a burst of load on the machine hit every candidate alike, so the ratios
    between them (the targets) are fairer than with one candidate timed after the other.
    """
    timers = {name: timeit.Timer(stmt, globals=dict(namespace)) for name, (stmt, namespace) in candidates.items()}
    numbers: dict[str, int] = {}
    for name, timer in timers.items():
        number = 1
        for _ in range(30):
            if timer.timeit(number) >= target_s / 10 or number >= 10_000_000:
                break
            number *= 10
        per_call = timer.timeit(number) / number
        numbers[name] = max(1, min(50_000_000, int(target_s / per_call))) if per_call > 0 else number
    samples: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(numbers[name]) / numbers[name] * 1e9)
    return {name: (samples[name], numbers[name]) for name in timers}


_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


def _importtime_lines(stderr: str) -> list[tuple[int, int, str]]:
    """(cumulative µs, depth, module) of each ``-X importtime`` line."""
    lines = []
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            lines.append((int(match.group(2)), len(match.group(3)) // 2, match.group(4)))
    return lines


def import_ms(statement: str, *, runs: int, env: Mapping[str, str], cwd: str) -> tuple[list[float], list[float]]:
    """Time ``statement`` in fresh interpreters: (``-X importtime`` ms, wall-clock ms), one figure per run.

    The importtime figure sums the cumulative column of the top-level imports that the statement
    made and that ``python -c pass`` does not already make at startup.
    """
    base = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, env=dict(env), cwd=cwd
    )
    startup = {module for _, _, module in _importtime_lines(base.stderr)}
    probe = f"import time as _t\n_s = _t.perf_counter()\n{statement}\nprint((_t.perf_counter() - _s) * 1000.0)"
    by_importtime: list[float] = []
    wall: list[float] = []
    for run in range(runs + 1):  # the first run writes bytecode caches and warms the page cache: discarded
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", probe], capture_output=True, text=True, env=dict(env), cwd=cwd
        )
        if result.returncode != 0:
            raise RuntimeError(f"{statement!r} failed in a subprocess: {result.stderr.strip()[-500:]}")
        total_us = sum(
            cumulative
            for cumulative, depth, module in _importtime_lines(result.stderr)
            if depth == 0 and module not in startup
        )
        if run:
            by_importtime.append(total_us / 1000.0)
            wall.append(float(result.stdout.strip().splitlines()[-1]))
    return by_importtime, wall


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalEndpoint:
    """A moto server in a child process on 127.0.0.1, so it never shares the GIL with the measurements."""

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalEndpoint:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> str:
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            port = _free_port()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self.url
            self.stop()
        raise RuntimeError("the local moto server did not start; is moto[server] installed (the bench extra)?")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return True
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous ones after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
