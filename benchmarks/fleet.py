"""A fleet of Lambda execution environments reading one stage from SSM, against SSM's request quota.

    python benchmarks/fleet.py                         # 1,000 and 10,000 environments (about a minute)
    python benchmarks/fleet.py --json fleet.json --plot fleet.png
    python benchmarks/fleet.py --environments 10000 --ttl 900
    python benchmarks/fleet.py --quick                 # the scaled-down run the test suite makes

A discrete-event simulation on a virtual clock (``_sim.EventLoop``). Each execution environment runs the
**real** confstage code: its own ``Config`` (``run=run_inline``, the simulation's clock, its own seeded
random for TTL jitter and backoff, no /tmp cache), and every invocation is what ``@confstage.handler``
does (``Config.begin`` + ``_context.enter``/``leave``) around reading every key of the stage. Its one source
is a stand-in for ``ssm://``: a whole-stage load is a paginated ``GetParametersByPath`` call against a
simulated SSM. Beside it, the same workload runs against a model of Powertools for AWS Lambda's parameters
cache, ``get_parameters(path)``: the path's values are cached until ``max_age`` (5 s by default) after
they arrived; an expired entry is fetched again in the invocation; a fetch that fails raises
``GetParameterError`` (the invocation fails) and nothing stale is ever served.

What is modelled:

* **The quota.** One token bucket for the operation: 40 requests a second (SSM's standard throughput for
  ``GetParametersByPath``), holding at most 40. A request takes a token when it is sent, or is throttled
  and takes none.
* **Paging.** ``MaxResults`` is 10, and SSM answers a full last page with a ``NextToken``, so a stage of
  20 keys costs 3 requests a load (as ``confstage/sources/ssm.py`` documents and the backend benchmark
  measured); Powertools' paginator pays the same.
* **Latency and the SDK.** Every request takes 30 ms. Both clients use botocore's default ``standard``
  retry mode (confstage configures it; boto3 defaults to it): 3 attempts per request, the retry after
  ``rand * min(2^(n-1), 20)`` seconds, and the per-client retry quota (500; 5 a throttled retry). A page
  that is still throttled fails the whole load (its earlier pages were spent for nothing).
* **Invocations.** Poisson arrivals at ``--rate`` per environment; an environment runs one invocation at
  a time (arrivals while it is busy wait for it, FIFO). An invocation that loads waits for the load's
  requests, its retries and their latency in virtual time.
* **The fleet.** A deploy wave: every environment starts cold, at a uniformly random moment within
  ``--wave`` seconds, with an invocation. Scale-out bursts: new cold environments (a fraction of the
  fleet each) start within a few seconds.

What is not:

* Lambda's routing (an arrival at a busy environment would go to another one, or start a new one),
  recycling of environments, invocation timeouts and the handler's own work: an invocation costs only
  its configuration reads.
* confstage's refresh deadline: a refresh runs in the invocation (``run_inline``) and the invocation waits
  for it to end, where a real client waits at most ``CONFSTAGE_REFRESH_TIMEOUT`` (1 s) and then serves the
  stale value. Whether the value served is stale or fresh does not change; the wait does.
* Any other caller of the same quota (the account's other functions, CloudFormation, the console),
  network errors, and the latency's spread. /tmp does not help here: a new environment has an empty one.
* The invocation rate is low (one a minute per environment by default) to keep the run short. It does
  not change what confstage asks of SSM (one load per environment per TTL while ``rate * TTL`` well above 1), but a
  busier fleet makes Powertools fetch more often, up to once per ``max_age`` per environment.

Figures are per model: requests a second (peak over 1 s, mean over the run and over the steady window),
throttled requests, failed invocations (in total, after the deploy wave, and in environments that had
loaded before), and the age of the values served (seconds since SSM answered, p50/p99).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gc
import json
import logging
import math
import os
import platform
import random
import sys
import time
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


from _sim import Call, EventLoop, Retries, Service, TokenBucket

import confstage
from confstage import Config, ConfstageError, SourceError, _context
from confstage.cache import Backoff, run_inline
from confstage.sources import Fetched

ARN = "arn:aws:lambda:us-east-1:123456789012:function:fleet:PRD"
PAGE = 10  # GetParametersByPath's MaxResults ceiling (confstage/sources/ssm.py)


@dataclass(frozen=True)
class Burst:
    """A scale-out: ``fraction`` of the fleet's initial size starts cold within ``spread`` seconds from ``at``."""

    at: float
    fraction: float
    spread: float = 10.0


@dataclass(frozen=True)
class Workload:
    """The fleet, its invocations and the service it reads, the same for every model."""

    environments: int
    rate: float = 1 / 60  # invocations a second per environment
    duration: float = 1000.0  # seconds during which invocations arrive
    wave: float = 60.0  # the deploy wave starts every environment within this many seconds
    bursts: tuple[Burst, ...] = (Burst(750.0, 0.1), Burst(875.0, 0.1))
    steady: tuple[float, float] = (500.0, 750.0)  # the window the steady-state rate is measured over
    keys: int = 20
    quota: float = 40.0  # requests a second
    burst_capacity: float = 40.0  # tokens the bucket holds
    latency: float = 0.03  # seconds a request takes
    attempts: int = 3  # botocore standard retry mode, both clients
    seed: int = 1

    @property
    def pages(self) -> int:
        """Requests one load of the stage costs: a full last page is answered with a NextToken, read too."""
        return self.keys // PAGE + 1


@dataclass(frozen=True)
class Model:
    """A client: ``confstage`` (the real ``Config``) or ``powertools`` (a model of its parameters cache)."""

    client: str
    ttl: float  # confstage: CONFSTAGE_TTL; Powertools: max_age
    jitter: float = confstage.variables.DEFAULT_TTL_JITTER
    max_stale: float = confstage.variables.DEFAULT_MAX_STALE
    backoff_base: float = 2.0
    backoff_cap: float = 60.0

    @property
    def label(self) -> str:
        if self.client == "powertools":
            return f"Powertools, max_age {self.ttl:g} s"
        return f"confstage, TTL {self.ttl:g} s"


# -- environments ------------------------------------------------------------------------------------


class Environment:
    """One execution environment: its invocations, one at a time, and what they found."""

    def __init__(self, fleet: Fleet, index: int, wave: bool) -> None:
        self.fleet = fleet
        self.index = index
        self.wave = wave  # started by the deploy wave (not a scale-out)
        self.random = random.Random(f"{fleet.workload.seed}/{index}")
        self.retries = Retries(fleet.workload.attempts, self.random.random)
        self.busy = False
        self.waiting = 0  # arrivals waiting for the invocation in progress
        self.loaded = False  # has served values at least once

    def start(self) -> None:
        """The environment's first invocation (its cold start), then Poisson arrivals."""
        self.arrive()

    def arrive(self) -> None:
        fleet = self.fleet
        following = fleet.loop.now + self.random.expovariate(fleet.workload.rate)
        if following < fleet.workload.duration:
            fleet.loop.at(following, self.arrive)
        if self.busy:
            self.waiting += 1
        else:
            self.invoke()

    def invoke(self) -> None:
        raise NotImplementedError

    def finished(self, ok: bool, age: float) -> None:
        """Record an invocation's outcome; start the next waiting one."""
        self.fleet.record(self, ok, age)
        if ok and not self.loaded:
            self.loaded = True
            self.fleet.first_load(self)
        self.busy = False
        if self.waiting:
            self.waiting -= 1
            self.fleet.loop.at(self.fleet.loop.now, self._next)

    def _next(self) -> None:
        if self.busy:  # an arrival got in first
            self.waiting += 1
        else:
            self.invoke()


class SimulatedSSM:
    """``ssm:///app`` as confstage sees it: a whole-stage source whose fetch is a call to the simulated SSM."""

    url = "ssm:///app"
    ttl: float | None = None
    whole_stage = True
    persist = False

    def __init__(self, env: ConfstageEnvironment) -> None:
        self.env = env

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        at = self.env.fleet.load(self.env)
        if at is None:
            raise SourceError(
                f"GetParametersByPath on /app/{stage} failed with ThrottlingException: Rate exceeded",
                source=self.url,
                operation="ssm:GetParametersByPath",
                throttled=True,
            )
        return Fetched(self.env.fleet.values(at))


class ConfstageEnvironment(Environment):
    """An environment running the real ``Config``; invocations as ``@confstage.handler`` runs them."""

    def __init__(self, fleet: Fleet, index: int, wave: bool) -> None:
        super().__init__(fleet, index, wave)
        model = fleet.model
        self.config = Config(
            [SimulatedSSM(self)],
            cache_dir="",
            ttl=model.ttl,
            ttl_jitter=model.jitter,
            max_stale=model.max_stale,
            clock=fleet.loop,
            run=run_inline,
            random=self.random.random,
            backoff=Backoff(model.backoff_base, model.backoff_cap, random=self.random.random),
            environ={},
        )

    def invoke(self) -> None:
        self.busy = True
        config, keys = self.config, self.fleet.keys
        invocation = config.begin(ARN)
        token = _context.enter(invocation)
        try:
            values = config.get_many(keys)
        except ConfstageError as exc:
            # Its traceback holds the cache's frames, which hold the failed flight, which holds the error:
            # thousands of such cycles a second would keep the collector busier than the simulation.
            exc.__traceback__ = None
            ok, age = False, math.nan
        else:
            ok, age = True, self.fleet.loop.now - float(values[keys[0]])
        finally:
            _context.leave(invocation, token)
        self.finished(ok, age)


class PowertoolsEnvironment(Environment):
    """``parameters.get_parameters(path)`` of Powertools for AWS Lambda (``BaseProvider.get_multiple``).

    The path's values are cached with an expiry of ``now + max_age`` set when they arrive; a cached entry
    is served while the expiry is not past; otherwise the call fetches, and a failure raises
    ``GetParameterError`` (nothing is cached, nothing stale is served).
    """

    def __init__(self, fleet: Fleet, index: int, wave: bool) -> None:
        super().__init__(fleet, index, wave)
        self.at = math.nan  # when the cached values were read
        self.expires = -math.inf

    def invoke(self) -> None:
        loop = self.fleet.loop
        if self.expires >= loop.now:
            self.finished(True, loop.now - self.at)
            return
        self.busy = True
        self.fleet.loads += 1
        Call(loop, self.fleet.service, self.retries, self.fleet.workload.pages, self._fetched)

    def _fetched(self, ok: bool, at: float) -> None:
        now = self.fleet.loop.now
        if ok:
            self.at = at
            self.expires = now + self.fleet.model.ttl
            self.fleet.loaded += 1
            self.finished(True, now - at)
        else:
            self.finished(False, math.nan)


# -- one run -----------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Per-second counts of invocations and failures, and the ages of values served."""

    invocations: list[int] = field(default_factory=list)
    failed_cold: list[int] = field(default_factory=list)
    failed_warm: list[int] = field(default_factory=list)
    ages: array[float] = field(default_factory=lambda: array("d"))

    def add(self, second: int, ok: bool, warm: bool, age: float) -> None:
        if second >= len(self.invocations):
            grow = [0] * (second + 1 - len(self.invocations))
            self.invocations.extend(grow)
            self.failed_cold.extend(grow)
            self.failed_warm.extend(grow)
        self.invocations[second] += 1
        if ok:
            self.ages.append(age)
        elif warm:
            self.failed_warm[second] += 1
        else:
            self.failed_cold[second] += 1


class Fleet:
    """One model on one workload: the environments, the service, the loop, and the tallies."""

    def __init__(self, workload: Workload, model: Model) -> None:
        self.workload = workload
        self.model = model
        self.loop = EventLoop()
        self.service = Service(TokenBucket(workload.quota, workload.burst_capacity), workload.latency)
        self.keys = [f"key{i:02d}" for i in range(workload.keys)]
        self.environments: list[Environment] = []
        self.tally = Tally()
        self.loads = 0  # loads started
        self.loaded = 0  # loads that succeeded
        self.wave_loaded = 0
        self.warm_at: float | None = None  # when the last environment of the deploy wave first served values
        self._values: tuple[float, dict[str, str]] = (math.nan, {})

    def run(self) -> dict[str, Any]:
        """Simulate the workload; return the figures."""
        started = time.perf_counter()
        thresholds = gc.get_threshold()
        gc.set_threshold(1_000_000, 100, 100)  # failed fetches leave cycles (tracebacks), but not that many
        workload, loop = self.workload, self.loop
        rng = random.Random(f"{workload.seed}/fleet")
        kind = ConfstageEnvironment if self.model.client == "confstage" else PowertoolsEnvironment
        births = [(rng.uniform(0.0, workload.wave), True) for _ in range(workload.environments)]
        for burst in workload.bursts:
            births += [
                (burst.at + rng.uniform(0.0, burst.spread), False)
                for _ in range(round(burst.fraction * workload.environments))
            ]
        for when, wave in births:
            env = kind(self, len(self.environments), wave)
            self.environments.append(env)
            loop.at(when, env.start)
        # Thousands of clients live for the whole run: keep the collector from scanning them again and again.
        gc.collect()
        gc.freeze()
        logger = logging.getLogger("confstage")
        level = logger.level
        logger.setLevel(logging.ERROR)  # "serving stale values" once per environment and failure: thousands
        try:
            loop.run()
        finally:
            logger.setLevel(level)
            gc.unfreeze()
            gc.set_threshold(*thresholds)
        return self.figures(time.perf_counter() - started)

    def load(self, env: Environment) -> float | None:
        """A whole-stage load for a confstage environment, waited for in virtual time: when SSM read it, or None."""
        outcome: list[float | None] = []
        self.loads += 1

        def start(wake: Callable[[], None]) -> None:
            def done(ok: bool, at: float) -> None:
                outcome.append(at if ok else None)
                wake()

            Call(self.loop, self.service, env.retries, self.workload.pages, done)

        self.loop.wait(start)
        if outcome[0] is not None:
            self.loaded += 1
        return outcome[0]

    def values(self, at: float) -> dict[str, str]:
        """The stage as SSM answered at ``at``: every value is that time, so a reader knows its age."""
        if self._values[0] != at:
            self._values = (at, dict.fromkeys(self.keys, repr(at)))
        return self._values[1]

    def record(self, env: Environment, ok: bool, age: float) -> None:
        self.tally.add(int(self.loop.now), ok, env.loaded, age)

    def first_load(self, env: Environment) -> None:
        if env.wave:
            self.wave_loaded += 1
            if self.wave_loaded == self.workload.environments:
                self.warm_at = self.loop.now

    def figures(self, seconds: float) -> dict[str, Any]:
        """What the report shows, plus the per-second series for the plot."""
        workload, tally, service = self.workload, self.tally, self.service
        sent, throttled = service.sent, service.throttled
        span = max(len(sent), 1)
        lo, hi = (int(x) for x in workload.steady)
        steady_sent = sum(sent[lo:hi])
        warm_at = self.warm_at
        after = math.inf if warm_at is None else warm_at
        failed_after_cold = sum(n for s, n in enumerate(tally.failed_cold) if s >= after)
        failed_after_warm = sum(n for s, n in enumerate(tally.failed_warm) if s >= after)
        ages = sorted(tally.ages)
        stale = 0
        if self.model.client == "confstage":
            stale = sum(
                env.config.stats()["total"]["stale"]
                for env in self.environments
                if isinstance(env, ConfstageEnvironment)
            )
        return {
            "model": asdict(self.model),
            "label": self.model.label,
            "environments": workload.environments,
            "environments_final": len(self.environments),
            "invocations": sum(tally.invocations),
            "failed": sum(tally.failed_cold) + sum(tally.failed_warm),
            "failed_cold": sum(tally.failed_cold),
            "failed_warm": sum(tally.failed_warm),
            "warm_at": warm_at,
            "failed_after_wave": None if warm_at is None else failed_after_cold + failed_after_warm,
            "failed_after_wave_cold": None if warm_at is None else failed_after_cold,
            "failed_after_wave_warm": None if warm_at is None else failed_after_warm,
            "requests": sum(sent),
            "throttled": sum(throttled),
            "peak_rps": max(sent, default=0),
            "mean_rps": sum(sent) / span,
            "steady_rps": steady_sent / (hi - lo),
            "steady_admitted_rps": (steady_sent - sum(throttled[lo:hi])) / (hi - lo),
            "loads": self.loads,
            "loads_ok": self.loaded,
            "stale_served": stale,
            "age_p50": _rank(ages, 0.50),
            "age_p99": _rank(ages, 0.99),
            "age_max": ages[-1] if ages else None,
            "simulated_s": self.loop.now,
            "drivers": self.loop.drivers,
            "wall_s": round(seconds, 2),
            "series": {
                "sent": sent,
                "throttled": throttled,
                "failed": [c + w for c, w in zip(tally.failed_cold, tally.failed_warm, strict=True)],
                "invocations": tally.invocations,
            },
        }


def _rank(ordered: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile by nearest rank (None without samples)."""
    if not ordered:
        return None
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# -- the report --------------------------------------------------------------------------------------


def sustained(quota: float, ttl: float, pages: int, jitter: float) -> int:
    """Environments a quota sustains at a TTL: each loads once per mean lifetime, ``ttl * (1 - jitter/2)``."""
    return int(quota * ttl * (1.0 - jitter / 2.0) / pages)


def check_targets(workload: Workload, runs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The issue's targets for every confstage run, PASS or FAIL with the figure; never adjusted to pass."""
    targets: list[dict[str, str]] = []
    for run in runs:
        if run["model"]["client"] != "confstage":
            continue
        who = f"{run['environments']:,} environments, {run['label']}"
        after = run["failed_after_wave"]
        if after is None:
            measured = "the deploy wave never finished loading"
        else:
            measured = (
                f"{after} after the fleet was warm at {run['warm_at']:.0f} s "
                f"({run['failed_after_wave_cold']} cold starts in scale-out bursts, "
                f"{run['failed_after_wave_warm']} in warm environments)"
            )
        targets.append(
            {
                "target": f"zero failed invocations after the deploy wave ({who})",
                "status": "PASS" if after == 0 else "FAIL",
                "measured": measured,
            }
        )
        targets.append(
            {
                "target": f"a warm environment never fails ({who})",
                "status": "PASS" if run["failed_warm"] == 0 else "FAIL",
                "measured": f"{run['failed_warm']} failed invocations in environments that had loaded",
            }
        )
        targets.append(
            {
                "target": f"steady-state request rate at or under the quota ({who})",
                "status": "PASS" if run["steady_rps"] <= workload.quota else "FAIL",
                "measured": f"{run['steady_rps']:.1f} req/s sent (quota {workload.quota:g})",
            }
        )
    return targets


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def render(results: dict[str, Any]) -> str:
    """The table of every run, the targets, and how many environments the quota sustains at each TTL."""
    workload = Workload(**_workload_args(results["workload"]))
    lines = [
        "quick: each fleet a tenth of its nominal size, on a tenth of the quota (the same load per token)"
        if results["meta"]["quick"]
        else "",
        f"SSM GetParametersByPath at {workload.quota:g} req/s (bucket of {workload.burst_capacity:g}), "
        f"{workload.latency * 1000:g} ms a request, {workload.keys} keys = {workload.pages} requests a load; "
        f"{workload.rate:.3g} invocations/s per environment; deploy wave over {workload.wave:g} s; "
        + ", ".join(f"+{b.fraction:.0%} at {b.at:g} s" for b in workload.bursts)
        + f"; {workload.duration:g} s; steady window {workload.steady[0]:g}-{workload.steady[1]:g} s",
        "",
        "| environments | client | peak req/s | mean req/s | steady req/s | throttled | invocations | failed "
        "| failed after the wave (warm at) | failed in warm environments | age p50 | age p99 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in results["runs"]:
        warm = "never warm" if run["warm_at"] is None else f"{run['failed_after_wave']:,} ({run['warm_at']:.0f} s)"
        lines.append(
            f"| {run['environments']:,} | {run['label']} | {run['peak_rps']:,} | {run['mean_rps']:.1f} "
            f"| {run['steady_rps']:.1f} | {run['throttled']:,} | {run['invocations']:,} | {run['failed']:,} "
            f"| {warm} | {run['failed_warm']:,} | {_num(run['age_p50'])} s | {_num(run['age_p99'])} s |"
        )
    lines += ["", "targets (issue 15):"]
    for target in results["targets"]:
        lines.append(f"  {target['status']:4}  {target['target']}: {target['measured']}")
    lines += ["", f"environments {workload.quota:g} req/s sustains at {workload.pages} requests a load:"]
    for ttl in (60, 300, 900, 3600):
        lines.append(f"  TTL {ttl:>5} s: {sustained(workload.quota, ttl, workload.pages, 0.1):>7,}")
    lines.append(f"\nran in {results['meta']['wall_s']:.0f} s")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Requests a second (10 s means, log scale) and failed invocations, one column per fleet size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({run["environments"] for run in results["runs"]})
    quota = results["workload"]["quota"]
    fig, axes = plt.subplots(2, len(sizes), figsize=(6.5 * len(sizes), 7), sharex=True, squeeze=False)
    for column, size in enumerate(sizes):
        top, bottom = axes[0][column], axes[1][column]
        for run in (r for r in results["runs"] if r["environments"] == size):
            sent = _means(run["series"]["sent"], 10)
            failed = _means(run["series"]["failed"], 10)
            top.plot([10 * i for i in range(len(sent))], [max(v, 0.1) for v in sent], label=run["label"])
            bottom.plot([10 * i for i in range(len(failed))], failed, label=run["label"])
        top.axhline(quota, color="black", linestyle="--", linewidth=1, label=f"quota {quota:g} req/s")
        top.set_yscale("log")
        top.set_title(f"{size:,} environments")
        top.set_ylabel("requests/s sent (10 s mean)")
        bottom.set_ylabel("failed invocations/s")
        bottom.set_xlabel("seconds")
        top.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _means(series: Sequence[int], width: int) -> list[float]:
    return [sum(series[i : i + width]) / width for i in range(0, len(series), width)]


# -- the command line --------------------------------------------------------------------------------


def _workload_args(data: dict[str, Any]) -> dict[str, Any]:
    args = dict(data)
    args["bursts"] = tuple(Burst(**b) for b in data["bursts"])
    args["steady"] = tuple(data["steady"])
    return args


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--environments", type=int, action="append", help="fleet size (repeatable; 1000 and 10000)")
    parser.add_argument("--clients", default="confstage,powertools", help="models to run (confstage,powertools)")
    parser.add_argument("--ttl", type=float, default=confstage.variables.DEFAULT_TTL, help="confstage TTL (300)")
    parser.add_argument("--jitter", type=float, default=confstage.variables.DEFAULT_TTL_JITTER)
    parser.add_argument("--max-stale", type=float, default=confstage.variables.DEFAULT_MAX_STALE)
    parser.add_argument("--backoff-base", type=float, default=2.0, help="confstage's first backoff, seconds")
    parser.add_argument("--backoff-cap", type=float, default=60.0, help="confstage's longest backoff, seconds")
    parser.add_argument("--max-age", type=float, default=5.0, help="Powertools max_age (5)")
    parser.add_argument("--rate", type=float, default=1 / 60, help="invocations a second per environment (1/60)")
    parser.add_argument(
        "--duration",
        type=float,
        default=1000.0,
        help="seconds of arrivals (1000); the steady window is its second half's first half, bursts follow",
    )
    parser.add_argument("--wave", type=float, default=60.0, help="seconds over which the deploy starts the fleet")
    parser.add_argument("--quota", type=float, default=40.0, help="requests a second SSM admits")
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tenth of the fleets on a tenth of the quota (the same load per token), for the test suite",
    )
    parser.add_argument("--jobs", type=int, help="runs at once, in worker processes (default: 2, 1 with --quick)")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG chart (matplotlib, the bench extra)")
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not clients or any(c not in ("confstage", "powertools") for c in clients):
        parser.error("--clients takes confstage and/or powertools")
    args.clients = clients
    if args.jobs is None:
        args.jobs = 1 if args.quick else min(2, os.cpu_count() or 1)
    if args.rate <= 0 or args.quota <= 0 or args.duration <= 0:
        parser.error("--rate, --quota and --duration must be positive")
    return args


def scenarios(args: argparse.Namespace) -> list[tuple[int, Workload, Model]]:
    """Every (nominal fleet size, workload, model) the arguments ask for, the longest runs first."""
    scale = 0.1 if args.quick else 1.0
    quota = args.quota * scale
    runs: list[tuple[int, Workload, Model]] = []
    for size in sorted(args.environments or [1000, 10000], reverse=True):
        workload = Workload(
            environments=max(1, round(size * scale)),
            rate=args.rate,
            duration=args.duration,
            wave=args.wave,
            bursts=tuple(Burst(args.duration * f, 0.1) for f in (0.75, 0.875)),
            steady=(args.duration * 0.5, args.duration * 0.75),
            keys=args.keys,
            quota=quota,
            burst_capacity=max(1.0, quota),
            seed=args.seed,
        )
        for client in args.clients:
            if client == "confstage":
                model = Model("confstage", args.ttl, args.jitter, args.max_stale, args.backoff_base, args.backoff_cap)
            else:
                model = Model("powertools", args.max_age)
            runs.append((size, workload, model))
    return runs


def simulate(size: int, workload: Workload, model: Model) -> dict[str, Any]:
    """One run (in a worker process when several run at once)."""
    run = Fleet(workload, model).run()
    run["nominal_environments"] = size
    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    todo = scenarios(args)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if args.jobs > 1 and len(todo) > 1:
        with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(simulate, *item) for item in todo]
            runs = [future.result() for future in futures]
    else:
        runs = [simulate(*item) for item in todo]
    for run in runs:
        print(f"  {run['environments']:>6,} environments, {run['label']}: {run['wall_s']:.1f} s", file=sys.stderr)
    runs.sort(key=lambda run: (run["environments"], run["model"]["client"]))
    base = replace(todo[0][1], environments=0)
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "quick": bool(args.quick),
            "jobs": args.jobs,
            "wall_s": round(time.perf_counter() - started, 2),
        },
        "workload": asdict(base),
        "runs": runs,
    }
    results["targets"] = check_targets(base, runs)
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    if args.plot:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
