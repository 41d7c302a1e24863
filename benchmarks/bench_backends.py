"""Benchmark every confstage source against raw boto3 and Powertools' parameters utility.

    python benchmarks/bench_backends.py                      # embedded moto server, 20 keys, no latency
    python benchmarks/bench_backends.py --latency-ms 10      # + 10 ms on every AWS call, for everyone
    python benchmarks/bench_backends.py --quick --json out.json --plot out.png

Per source: a cold fetch of one key (new client, empty caches; and with the client already made), a whole
stage of ``--keys`` keys with the HTTP requests it took, a warm cached ``get`` in ns per call, a new process
with a warm /tmp cache; and ``import`` time. Beside it: raw boto3 doing the same work (one call per key, and
the best batch call), Powertools where it covers the backend (its ``max_age`` cache for the warm case), and
the floor: a function doing one dict lookup. These read through the botocore transport (the request probe
hooks botocore's clients). Then the cold path per source and transport (``cold_path.py``): fresh Lambda-like
processes doing ``import confstage`` and a first fetch through the lite and the botocore transport, beside raw
boto3 making the same request(s) and a bare interpreter, wall time and peak memory (``--cold-runs``, 0 skips
it). The issue's targets are checked and printed PASS/FAIL.

By default everything runs against a moto server started in a child process on 127.0.0.1 (so it does not
share the GIL with the measurements). ``--endpoint-url`` uses another endpoint; real AWS needs ``--real``
(it creates and then deletes a bucket, two tables, parameters, a secret, and schedules a KMS key deletion).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _invocation
import cold_path
from _backends import STAGE, Backend, Clients, World, backends, cleanup, seed
from _harness import LocalEndpoint, Probe, environment, import_ms, ns_interleaved, summarize
from _report import check_targets, plot, render

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "_child_warm_tmp.py"


class Settings:
    """How hard to measure: the defaults finish in about two minutes on 2 cores (the cold path table's 120 fresh
    processes about 30 s of it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        quick = bool(args.quick)
        self.quick = quick
        self.keys: int = args.keys if args.keys is not None else (5 if quick else 20)
        self.repeats: int = args.repeats if args.repeats is not None else (3 if quick else 10)
        # A new boto3 client costs 50-300 ms of CPU (service models are loaded and parsed): fewer runs of those.
        self.cold_repeats: int = args.repeats if args.repeats is not None else (2 if quick else 7)
        self.warm_repeats = 5 if quick else 30
        self.warm_target_s = 0.002 if quick else 0.01  # wall time of one warm repeat
        self.process_runs = 2 if quick else 5
        self.process_runs_fetching = 2 if quick else 3  # sources not kept in /tmp import boto3 and fetch again
        self.import_runs = 2 if quick else 7
        self.import_runs_context = 2 if quick else 3  # import boto3: context only, no target
        # Fresh processes per contender and source for the cold path table (4 contenders x 5 sources each).
        self.cold_runs: int = args.cold_runs if args.cold_runs is not None else (1 if quick else 5)
        self.latency_ms: float = args.latency_ms


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", help="an AWS endpoint to use instead of the embedded moto server")
    parser.add_argument(
        "--real", action="store_true", help="run against real AWS (no --endpoint-url); creates resources"
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--keys", type=int, help="keys in the stage (default 20; 5 with --quick)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated delay added to every AWS call")
    parser.add_argument("--repeats", type=int, help="runs of each cold/stage measurement (default 10; 3 with --quick)")
    parser.add_argument("--only", help="comma-separated source names to measure (default: all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few keys, few iterations")
    parser.add_argument(
        "--cold-runs",
        type=int,
        help="fresh processes per contender and source in the cold path table (default 5; 1 with --quick; 0 skips it)",
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG chart (matplotlib, the bench extra)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    if args.keys is not None and not 1 <= args.keys <= 1000:
        parser.error("--keys must be between 1 and 1000")
    if args.repeats is not None and not 1 <= args.repeats <= 1000:
        parser.error("--repeats must be between 1 and 1000")
    if args.cold_runs is not None and not 0 <= args.cold_runs <= 1000:
        parser.error("--cold-runs must be between 0 and 1000")
    if args.real and args.endpoint_url:
        parser.error("--real and --endpoint-url are exclusive")
    return args


class Bench:
    """Runs every measurement of one backend; holds what they share."""

    def __init__(self, settings: Settings, world: World, probe: Probe, scratch: Path) -> None:
        self.s = settings
        self.world = world
        self.probe = probe
        self.scratch = scratch
        self._dirs = 0
        self.fresh = Clients(endpoint=world.endpoint, region=world.region, attach=probe.attach, reuse=False)
        self.warm = Clients(endpoint=world.endpoint, region=world.region, attach=probe.attach, reuse=True)

    def cache_dir(self) -> str:
        """A new, empty /tmp cache directory (created by confstage itself, as in a fresh sandbox)."""
        self._dirs += 1
        return str(self.scratch / f"cache-{self._dirs}")

    def series(
        self, run: Callable[[], object], *, setup: Callable[[], object] | None = None, repeats: int | None = None
    ) -> dict[str, Any]:
        """ms per ``run()`` (median, p99, n) and the HTTP requests each run made."""
        samples: list[float] = []
        counts: list[int] = []
        for _ in range(repeats or self.s.repeats):
            if setup is not None:
                setup()
            self.probe.reset()
            started = time.perf_counter()
            run()
            samples.append((time.perf_counter() - started) * 1000.0)
            counts.append(self.probe.requests)
        result = summarize(samples, "ms")
        result["requests"] = Counter(counts).most_common(1)[0][0]
        if len(set(counts)) > 1:
            result["requests_range"] = [min(counts), max(counts)]
        return result

    def warm_ns(self, candidates: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """Warm gets of every candidate, interleaved; each with the requests made (0 expected)."""
        self.probe.reset()
        timed = ns_interleaved(candidates, repeats=self.s.warm_repeats, target_s=self.s.warm_target_s)
        results = {}
        for name, (samples, number) in timed.items():
            results[name] = summarize(samples, "ns")
            results[name]["calls_per_repeat"] = number
            results[name]["requests"] = self.probe.requests  # for all of them together
        return results

    # -- confstage -------------------------------------------------------------------------------------

    def confstage(self, backend: Backend, warm: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        import confstage
        from confstage import Config, aws

        world, keys, key = self.world, self.world.keys, self.world.keys[0]
        url = backend.url(world)
        expected = {k: world.values[k] for k in keys}
        holder: dict[str, Any] = {}

        def new_config() -> None:
            holder["config"] = Config(sources=[url], stage=STAGE, cache_dir=self.cache_dir())

        first = Config(sources=[url], stage=STAGE, cache_dir=self.cache_dir())
        got = first.get_many(keys)  # warm-up: imports the source module and botocore (untimed)
        if got != expected:
            raise AssertionError(f"confstage returned wrong values for {url}")
        whole_stage = bool(first.sources[0].whole_stage)
        result: dict[str, Any] = {"url": url, "whole_stage": whole_stage}

        # (1) cold fetch of one key: new Config, empty caches; with new clients, and with clients already made.
        # The Config is built inside the timed run, as a handler's first call builds the default client.
        def cold() -> None:
            config = Config(sources=[url], stage=STAGE, cache_dir=holder["dir"])
            if config.get(key) != world.values[key]:
                raise AssertionError("wrong value")

        def fresh_dir(reset_clients: bool) -> Callable[[], None]:
            def setup() -> None:
                if reset_clients:
                    aws.reset()
                holder["dir"] = self.cache_dir()

            return setup

        result["cold_new_client"] = self.series(cold, setup=fresh_dir(True), repeats=self.s.cold_repeats)
        result["cold_warm_client"] = self.series(cold, setup=fresh_dir(False))

        # (2) a whole stage of N keys with get_many, clients made, caches empty.
        result["stage"] = self.series(lambda: holder["config"].get_many(keys), setup=new_config)

        # (3) warm cached get through the module-level function (and Config.get): timed by measure(),
        # interleaved with Powertools and the dict lookup; confstage.reset() follows there.
        middle = keys[len(keys) // 2]
        confstage.configure(sources=[url], stage=STAGE, cache_dir=self.cache_dir())
        confstage.get_many(keys)
        if confstage.get(middle) != world.values[middle]:
            raise AssertionError("wrong value")
        warm["confstage"] = ("g(k)", {"g": confstage.get, "k": middle})
        config = confstage.Config(sources=[url], stage=STAGE, cache_dir=self.cache_dir())
        config.get_many(keys)
        warm["config"] = ("g(k)", {"g": config.get, "k": middle})

        # (4) a new process with a warm /tmp cache.
        cache_dir = self.cache_dir()
        Config(sources=[url], stage=STAGE, cache_dir=cache_dir).get_many(keys)
        runs = self.s.process_runs if backend.persisted else self.s.process_runs_fetching
        result["new_process"] = self.new_process(url, cache_dir, runs)
        return result

    def new_process(self, url: str, cache_dir: str, runs: int) -> dict[str, Any]:
        spec = json.dumps(
            {
                "url": url,
                "stage": STAGE,
                "cache_dir": cache_dir,
                "keys": self.world.keys,
                "latency_ms": self.s.latency_ms,
            }
        )
        inside: list[float] = []
        wall: list[float] = []
        counts: list[int] = []
        boto3_imported = False
        for _ in range(runs):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(CHILD), spec], capture_output=True, text=True, cwd=ROOT, timeout=120
            )
            wall.append((time.perf_counter() - started) * 1000.0)
            if done.returncode != 0:
                raise RuntimeError(f"new-process run failed: {done.stderr.strip()[-800:]}")
            report = json.loads(done.stdout.strip().splitlines()[-1])
            if not report["ok"]:
                raise AssertionError("the new process read wrong keys")
            inside.append(float(report["ms"]))
            counts.append(int(report["requests"]))
            boto3_imported = boto3_imported or bool(report["boto3_imported"])
        result = summarize(inside, "ms")
        result["requests"] = Counter(counts).most_common(1)[0][0]
        if len(set(counts)) > 1:
            result["requests_range"] = [min(counts), max(counts)]
        result["process_wall"] = summarize(wall, "ms")
        result["boto3_imported"] = boto3_imported
        return result

    # -- raw boto3 -------------------------------------------------------------------------------------

    def boto3(self, backend: Backend) -> dict[str, Any] | None:
        if backend.one is None or backend.service is None:
            return None
        one, batch, service = backend.one, backend.batch, backend.service
        world, keys, key = self.world, self.world.keys, self.world.keys[0]
        client = self.warm.client(service)
        if one(client, world, key) != world.values[key]:
            raise AssertionError("raw boto3 read a wrong value")
        result: dict[str, Any] = {"one_call": backend.one_call, "batch_call": backend.batch_call}
        result["cold_new_client"] = self.series(
            lambda: one(self.fresh.client(service), world, key), repeats=self.s.cold_repeats
        )
        result["cold_warm_client"] = self.series(lambda: one(client, world, key))
        result["stage_each"] = self.series(lambda: [one(client, world, k) for k in keys])
        if batch is not None:
            if dict(batch(client, world, keys)) != {k: world.values[k] for k in keys}:
                raise AssertionError("raw boto3 batch read wrong values")
            if backend.batch_call == backend.one_call:  # the same request (a whole document): measured once
                result["batch_cold_new_client"] = result["cold_new_client"]
            else:
                result["batch_cold_new_client"] = self.series(
                    lambda: batch(self.fresh.client(service), world, keys), repeats=self.s.cold_repeats
                )
            result["stage_batch"] = self.series(lambda: batch(client, world, keys))
        return result

    # -- Powertools ------------------------------------------------------------------------------------

    def powertools(self, backend: Backend, warm: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
        spec = backend.powertools
        if spec is None:
            return None
        world, keys, key = self.world, self.world.keys, self.world.keys[0]
        provider = spec.make(self.warm, world)
        if spec.one(provider, world, key) != world.values[key]:
            raise AssertionError("Powertools read a wrong value")
        result: dict[str, Any] = {"provider": spec.provider, "stage_call": spec.stage_call, "note": spec.note}

        def cold(clients: Clients) -> Callable[[], object]:
            return lambda: spec.one(spec.make(clients, world), world, key)

        result["cold_new_client"] = self.series(cold(self.fresh), repeats=self.s.cold_repeats)
        result["cold_warm_client"] = self.series(cold(self.warm))
        make_stage = spec.make_stage or spec.make
        holder: dict[str, Any] = {}

        def new_provider() -> None:
            holder["provider"] = make_stage(self.warm, world)

        stage_values = spec.stage(make_stage(self.warm, world), world, keys)
        if {k: stage_values.get(k) for k in keys} != {k: world.values[k] for k in keys}:
            raise AssertionError("Powertools read wrong stage values")
        result["stage"] = self.series(lambda: spec.stage(holder["provider"], world, keys), setup=new_provider)
        middle = keys[len(keys) // 2]
        cached = spec.make(self.warm, world)
        spec.one(cached, world, middle, max_age=300)
        warm["powertools"] = (spec.warm_stmt(), {"g": cached.get, "n": spec.name_of(world, middle), "k": middle})
        return result


_FLOOR: dict[str, str] = {}


def dict_lookup(key: str) -> str:
    """The floor: a Python function doing one dict lookup."""
    return _FLOOR[key]


def measure(bench: Bench, backend: Backend) -> dict[str, Any]:
    entry: dict[str, Any] = {"title": backend.title, "notes": list(backend.notes), "persisted": backend.persisted}
    if importlib.util.find_spec(backend.module) is None:
        entry.update(status="skipped", reason=f"{backend.module} does not exist yet")
        return entry
    started = time.perf_counter()
    warm: dict[str, tuple[str, dict[str, Any]]] = {}
    try:
        entry["confstage"] = bench.confstage(backend, warm)
        entry["boto3"] = bench.boto3(backend)
        entry["powertools"] = bench.powertools(backend, warm)
        middle = bench.world.keys[len(bench.world.keys) // 2]
        warm["floor"] = ("g(k)", {"g": dict_lookup, "k": middle})
        timed = bench.warm_ns(warm)
        entry["confstage"]["warm_get"] = timed["confstage"]
        entry["confstage"]["warm_config_get"] = timed["config"]
        entry["floor"] = timed["floor"]
        if entry["powertools"] is not None:
            entry["powertools"]["warm_get"] = timed["powertools"]
        entry["status"] = "ok"
    except Exception as exc:  # one broken source must not hide the others' results
        entry.update(status="error", reason=f"{type(exc).__name__}: {exc}"[:500])
        traceback.print_exc(file=sys.stderr)
    finally:
        import confstage

        confstage.reset()
    entry["seconds"] = round(time.perf_counter() - started, 2)
    return entry


def measure_invocation(bench: Bench, backend: Backend) -> dict[str, Any]:
    """A @handler invocation reading warm keys, one get inside it, Config.get outside: beside Powertools."""
    world = bench.world
    spec = backend.powertools
    provider = spec.make(bench.warm, world) if spec is not None else None
    return _invocation.measure(
        backend.url(world),
        STAGE,
        world.keys,
        world.values,
        provider.get if provider is not None else None,
        (lambda key: spec.name_of(world, key)) if spec is not None else str,
        repeats=bench.s.warm_repeats,
        target_s=bench.s.warm_target_s,
        cache_dir=bench.cache_dir(),
        instructions=not bench.s.quick and shutil.which("valgrind") is not None,
    )


def imports(settings: Settings, env: dict[str, str]) -> dict[str, Any]:
    statements = {
        "confstage": ("import confstage", settings.import_runs),
        "powertools_parameters": ("import aws_lambda_powertools.utilities.parameters", settings.import_runs),
        "boto3": ("import boto3", settings.import_runs_context),
    }
    result: dict[str, Any] = {}
    for name, (statement, runs) in statements.items():
        by_importtime, wall = import_ms(statement, runs=runs, env=env, cwd=str(ROOT))
        result[name] = summarize(by_importtime, "ms")
        result[name]["statement"] = statement
        result[name]["wall"] = summarize(wall, "ms")
    return result


def measure_cold_path(settings: Settings, names: Sequence[str], endpoint: str | None) -> dict[str, Any] | None:
    """The cold path table (``cold_path.measure``) for the chosen sources it covers; None when skipped.

    It runs on a local moto server: the embedded one (``endpoint``), else one of its own (with ``--real`` or
    ``--endpoint-url`` too: it measures the client side of a cold start, not the network).
    """
    wanted = [name for name in names if name in cold_path.READS]
    if not settings.cold_runs or not wanted:
        return None
    print("measuring the cold path per source and transport ...", file=sys.stderr, flush=True)
    rows = cold_path.measure(endpoint, runs=settings.cold_runs, sources=wanted)
    return {
        "runs": settings.cold_runs,
        "endpoint": "embedded moto server",
        "rows": rows,
        "verdicts": cold_path.verdicts(rows),
    }


def aws_environment(endpoint: str | None, region: str, real: bool) -> dict[str, str]:
    env = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    if not real:  # never let a local run find real credentials
        env.update(
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106  # the local endpoint's dummy credentials
            AWS_SESSION_TOKEN="testing",  # noqa: S106
        )
    return env


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("confstage", "boto3", "botocore", "aws-lambda-powertools", "moto"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def _commit() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()
    return ""


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings(args)
    chosen = backends()
    if args.only:
        names = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = names - {b.name for b in chosen}
        if unknown:
            known = ", ".join(b.name for b in chosen)
            raise SystemExit(f"unknown source(s) {', '.join(sorted(unknown))}; known: {known}")
        chosen = [b for b in chosen if b.name in names]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        endpoint: str | None = args.endpoint_url
        embedded = endpoint is None and not args.real
        if embedded:
            endpoint = stack.enter_context(LocalEndpoint()).url
        for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_") or n == "AWS_PROFILE"]:
            if not args.real:
                stack.enter_context(_unset(name))
        aws_env = aws_environment(endpoint, args.region, args.real)
        stack.enter_context(environment(aws_env))
        stack.enter_context(environment({"AWS_LAMBDA_FUNCTION_NAME": "confstage-bench"}))
        # The probe (request counts, simulated latency) hooks botocore clients, so the measurements beside raw
        # boto3 and Powertools read through botocore; the lite transport is measured by the cold path table.
        stack.enter_context(environment({"CONFSTAGE_TRANSPORT": "botocore"}))
        keys = [f"key{i:03d}" for i in range(settings.keys)]
        values = {k: f"value-of-{k}-{'x' * 24}" for k in keys}  # ~40 bytes, a typical URL or name
        world = World(endpoint=endpoint, region=args.region, keys=keys, values=values)
        _FLOOR.clear()
        _FLOOR.update(values)
        wanted = {b.name for b in chosen if importlib.util.find_spec(b.module) is not None}
        seed(world, wanted)
        if endpoint is None or args.endpoint_url:
            stack.callback(_report_cleanup, world, wanted)
        stack.enter_context(environment(world.env))
        scratch = Path(tempfile.mkdtemp(prefix="confstage-bench-"))
        stack.callback(shutil.rmtree, scratch, True)
        # Child interpreters (import time, new process) run from compiled bytecode, as a deployment package
        # built by pip does; a private cache prefix gives every package the same treatment (an editable
        # install under PYTHONDONTWRITEBYTECODE would otherwise recompile confstage on every start).
        stack.enter_context(_unset("PYTHONDONTWRITEBYTECODE"))
        pycache = Path(tempfile.gettempdir()) / "confstage-bench-pycache"  # kept between runs: compiled once
        stack.enter_context(environment({"PYTHONPYCACHEPREFIX": str(pycache)}))
        probe = Probe(settings.latency_ms)
        from confstage import aws
        from confstage.transport.botocore import add_client_hook

        remove_hook = add_client_hook(probe.attach)
        stack.callback(remove_hook)
        stack.callback(aws.reset)
        aws.reset()
        bench = Bench(settings, world, probe, scratch)
        sources: dict[str, Any] = {}
        for backend in chosen:
            print(f"measuring {backend.name} ...", file=sys.stderr, flush=True)
            sources[backend.name] = measure(bench, backend)
        per_invocation = None
        ddb = next((b for b in chosen if b.name == "dynamodb-stage-key"), None)
        if ddb is not None and sources.get(ddb.name, {}).get("status") == "ok":
            print("measuring per-invocation costs ...", file=sys.stderr, flush=True)
            per_invocation = measure_invocation(bench, ddb)
        print("measuring import times ...", file=sys.stderr, flush=True)
        import_times = imports(settings, dict(os.environ))
        cold = measure_cold_path(settings, [b.name for b in chosen], endpoint if embedded else None)
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "endpoint": "real AWS" if args.real else ("embedded moto server" if not args.endpoint_url else endpoint),
            "region": args.region,
            "keys": settings.keys,
            "latency_ms": settings.latency_ms,
            "quick": settings.quick,
            "repeats": settings.repeats,
            "cold_repeats": settings.cold_repeats,
            "warm_repeats": settings.warm_repeats,
            "process_runs": settings.process_runs,
            "import_runs": settings.import_runs,
            "cold_runs": settings.cold_runs,
            "versions": _versions(),
            "commit": _commit(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "import": import_times,
        "per_invocation": per_invocation,
        "sources": sources,
        "cold_path": cold,
    }
    results["targets"] = check_targets(results)
    results["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    return results


@contextlib.contextmanager
def _unset(name: str) -> Any:
    saved = os.environ.pop(name, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[name] = saved


def _report_cleanup(world: World, wanted: set[str]) -> None:
    for problem in cleanup(world, wanted):
        print(f"cleanup: {problem}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
