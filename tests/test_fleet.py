"""The fleet simulation: its clock, quota and retries, and what its quick run says about the issue's targets."""

from __future__ import annotations

import math
from typing import Any

import fleet
import pytest
from _sim import Call, EventLoop, Retries, Service, TokenBucket

from .conftest import run_benchmark

# -- the token bucket ---------------------------------------------------------------------------------


def test_bucket_admits_its_burst_then_throttles() -> None:
    """A full bucket of 4 admits 4 requests at one instant and throttles the fifth."""
    bucket = TokenBucket(rate=2.0, burst=4.0)
    assert [bucket.take(0.0) for _ in range(5)] == [True, True, True, True, False]


def test_bucket_refills_at_its_rate() -> None:
    """Empty, a bucket of 2 tokens a second admits one request after 0.5 s and not before."""
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert bucket.take(0.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)
    assert not bucket.take(0.5)


def test_bucket_never_holds_more_than_its_burst() -> None:
    """After a long idle spell a bucket holds its burst, not the tokens of the whole spell."""
    bucket = TokenBucket(rate=10.0, burst=3.0)
    admitted = sum(bucket.take(100.0) for _ in range(10))
    assert admitted == 3


def test_a_throttled_request_takes_no_token() -> None:
    """Refusals do not drain the bucket: the token that arrives next goes to the next request."""
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.take(0.0)
    assert not any(bucket.take(0.5) for _ in range(100))
    assert bucket.take(1.0)


def test_bucket_refuses_time_going_backwards() -> None:
    """The simulation's clock only moves forward; a bucket says so if it does not."""
    bucket = TokenBucket(rate=1.0, burst=1.0)
    bucket.take(5.0)
    with pytest.raises(ValueError, match="backwards"):
        bucket.take(4.0)


def test_service_counts_requests_per_second() -> None:
    """Sent requests and throttled ones are tallied by whole second of virtual time."""
    service = Service(TokenBucket(rate=1.0, burst=1.0), latency=0.01)
    outcomes = [service.request(t) for t in (0.1, 0.2, 2.5)]
    assert outcomes == [True, False, True]
    assert service.sent == [2, 0, 1]
    assert service.throttled == [1, 0, 0]


# -- the event loop -----------------------------------------------------------------------------------


def test_events_run_in_time_order_and_ties_in_scheduling_order() -> None:
    """The heap orders by time, then by when the event was scheduled; the clock reads each event's time."""
    loop = EventLoop()
    seen: list[tuple[float, str]] = []
    for when, name in ((2.0, "c"), (1.0, "a"), (1.0, "b"), (0.5, "first")):
        loop.at(when, lambda name=name: seen.append((loop(), name)))  # type: ignore[misc]
    loop.run()
    assert seen == [(0.5, "first"), (1.0, "a"), (1.0, "b"), (2.0, "c")]


def test_scheduling_in_the_past_is_refused() -> None:
    """An event cannot be put before the current virtual time."""
    loop = EventLoop()
    loop.at(1.0, lambda: loop.at(0.5, lambda: None))
    with pytest.raises(ValueError, match="before now"):
        loop.run()


def test_a_waiting_callback_resumes_at_its_wake_time_while_others_run() -> None:
    """Five callbacks each wait a different time; the loop runs others meanwhile and resumes each on time."""
    loop = EventLoop()
    log: list[tuple[float, str]] = []

    def waiter(name: str, delay: float) -> None:
        loop.wait(lambda wake: loop.after(delay, wake))
        log.append((loop.now, name))

    for i in range(5):
        loop.at(i * 0.1, lambda i=i: waiter(f"w{i}", 1.0 - i * 0.2))  # type: ignore[misc]
    loop.at(0.45, lambda: log.append((loop.now, "plain")))
    loop.run()
    assert [name for _, name in log] == ["plain", "w4", "w3", "w2", "w1", "w0"]
    assert [round(t, 9) for t, _ in log] == [0.45, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert loop.drivers >= 1


def test_a_wait_woken_at_once_does_not_block() -> None:
    """``start`` calling ``wake`` itself returns straight away, with no other greenlet involved."""
    loop = EventLoop()
    done: list[float] = []

    def callback() -> None:
        loop.wait(lambda wake: wake())
        done.append(loop.now)

    loop.at(3.0, callback)
    loop.run()
    assert done == [3.0]
    assert loop.drivers == 0


def test_an_exception_in_a_callback_stops_the_run() -> None:
    """The first exception a callback raises comes out of ``run()``; later events do not run."""
    loop = EventLoop()
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    loop.at(1.0, boom)
    loop.at(2.0, lambda: ran.append("late"))
    with pytest.raises(RuntimeError, match="boom"):
        loop.run()
    assert ran == []


def test_a_wait_that_is_never_woken_is_an_error() -> None:
    """A callback waiting on an event nobody scheduled makes ``run()`` fail rather than hang."""
    loop = EventLoop()
    loop.at(1.0, lambda: loop.wait(lambda wake: None))
    with pytest.raises(RuntimeError, match="never come"):
        loop.run()


# -- the SDK's retries and a paginated call -----------------------------------------------------------


def test_retry_delays_follow_botocores_standard_mode() -> None:
    """Retry n waits rand * min(2^(n-1), 20) s; after the last attempt there is none."""
    retries = Retries(attempts=7, random=lambda: 1.0)
    assert [retries.retry_after(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]
    assert retries.retry_after(7) is None


def test_the_retry_quota_runs_out_and_comes_back() -> None:
    """Throttled retries spend 5 of 500; with fewer than 5 left there is no retry until successes refund it."""
    retries = Retries(attempts=3, random=lambda: 0.5)
    spent = 0
    while retries.retry_after(1) is not None:
        spent += 1
    assert spent == 100
    for _ in range(5):
        retries.succeeded(1)
    assert retries.retry_after(1) is not None


def test_a_call_reads_its_pages_one_after_another() -> None:
    """Three pages with room in the bucket: three requests, 30 ms apart, values as of the first."""
    loop = EventLoop()
    service = Service(TokenBucket(rate=100.0, burst=100.0), latency=0.03)
    result: list[tuple[bool, float, float]] = []

    def start() -> None:
        Call(loop, service, Retries(3, lambda: 0.5), 3, lambda ok, at: result.append((ok, at, loop.now)))

    loop.at(10.0, start)
    loop.run()
    ((ok, at, ended),) = result
    assert (ok, at) == (True, 10.0)
    assert ended == pytest.approx(10.09)
    assert sum(service.sent) == 3


def test_a_throttled_page_is_retried_then_the_call_fails() -> None:
    """A page throttled on every attempt fails the call after 3 requests; earlier pages stay spent."""
    loop = EventLoop()
    service = Service(TokenBucket(rate=1e-9, burst=1.0), latency=0.03)
    result: list[bool] = []

    def start() -> None:
        Call(loop, service, Retries(3, lambda: 0.5), 3, lambda ok, at: result.append(ok))

    loop.at(0.0, start)
    loop.run()
    assert result == [False]
    assert sum(service.sent) == 1 + 3  # page 1 admitted; page 2 tried three times
    assert sum(service.throttled) == 3


# -- whole runs ---------------------------------------------------------------------------------------


def small(environments: int, quota: float) -> fleet.Workload:
    return fleet.Workload(
        environments=environments,
        rate=1 / 20,
        duration=400.0,
        wave=20.0,
        bursts=(fleet.Burst(300.0, 0.1),),
        steady=(200.0, 300.0),
        quota=quota,
        burst_capacity=quota,
    )


def test_a_run_is_reproducible_from_its_seed() -> None:
    """Two runs of the same workload and seed give the same figures (the wall time aside)."""
    first = fleet.Fleet(small(40, 2.0), fleet.Model("confstage", 60.0)).run()
    second = fleet.Fleet(small(40, 2.0), fleet.Model("confstage", 60.0)).run()
    for run in (first, second):
        run.pop("wall_s")
    assert first == second
    assert first["invocations"] > 500


def test_served_ages_stay_within_the_ttl_while_the_quota_holds() -> None:
    """Under the quota every confstage invocation succeeds once warm, and no value is older than TTL plus a wait."""
    run = fleet.Fleet(small(20, 20.0), fleet.Model("confstage", 60.0, jitter=0.0)).run()
    assert run["failed"] == 0
    assert run["throttled"] == 0
    assert run["age_max"] is not None
    assert run["age_max"] < 60.0 + 1.0
    assert run["loads_ok"] >= 20 * (400 // 60) // 2  # about one load per environment per TTL


def test_powertools_fetches_every_invocation_past_max_age() -> None:
    """Invocations 20 s apart on average against a 5 s max_age: almost every one makes a load."""
    run = fleet.Fleet(small(20, 20.0), fleet.Model("powertools", 5.0)).run()
    assert run["loads"] > 0.8 * run["invocations"]
    assert run["age_max"] is not None
    assert run["age_max"] <= 5.0 + 0.1


@pytest.fixture(scope="module", name="quick")
def fixture_quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``--quick`` run of the script (1,000 and 10,000 environments scaled to a tenth), read from --json."""
    stdout, results = run_benchmark(
        "fleet.py", "--quick", out=tmp_path_factory.mktemp("fleet") / "fleet.json", drop=("CONFSTAGE_",)
    )
    assert "targets (issue 15)" in stdout
    return results


def runs(results: dict[str, Any], nominal: int, client: str) -> dict[str, Any]:
    (run,) = (r for r in results["runs"] if r["nominal_environments"] == nominal and r["model"]["client"] == client)
    found: dict[str, Any] = run
    return found


def test_quick_run_covers_both_fleets_and_both_clients(quick: dict[str, Any]) -> None:
    """Four runs: 100 and 1,000 environments (standing for 1,000 and 10,000) on 4 req/s, each client."""
    assert quick["meta"]["quick"] is True
    assert quick["workload"]["quota"] == pytest.approx(4.0)
    assert sorted((r["environments"], r["model"]["client"]) for r in quick["runs"]) == [
        (100, "confstage"),
        (100, "powertools"),
        (1000, "confstage"),
        (1000, "powertools"),
    ]
    for run in quick["runs"]:
        admitted = [s - t for s, t in zip(run["series"]["sent"], run["series"]["throttled"], strict=True)]
        assert max(admitted) <= 2 * quick["workload"]["quota"]  # a full bucket plus a second's refill


def test_quick_run_fleet_within_the_quota_meets_the_targets(quick: dict[str, Any]) -> None:
    """The 1,000-environment fleet: warm after the wave, then no failed invocation and a rate under the quota."""
    run = runs(quick, 1000, "confstage")
    assert run["warm_at"] is not None
    assert run["failed_after_wave_warm"] == 0
    assert run["failed_warm"] == 0
    assert run["steady_rps"] <= quick["workload"]["quota"]
    assert run["age_p99"] <= 300.0 + 60.0  # the TTL, plus the wait for the next invocation


def test_quick_run_warm_confstage_environments_never_fail(quick: dict[str, Any]) -> None:
    """Even when the fleet is far over the quota, an environment that loaded once keeps serving (stale)."""
    run = runs(quick, 10000, "confstage")
    assert run["failed_warm"] == 0
    assert run["loads_ok"] > 0
    assert run["stale_served"] > 0


def test_quick_run_powertools_fails_in_warm_environments(quick: dict[str, Any]) -> None:
    """The Powertools model, with nothing stale to serve, fails invocations in environments that had loaded."""
    for nominal in (1000, 10000):
        assert runs(quick, nominal, "powertools")["failed_warm"] > 0, nominal
    assert runs(quick, 1000, "powertools")["throttled"] > runs(quick, 1000, "confstage")["throttled"]


def test_quick_run_reports_the_targets_as_measured(quick: dict[str, Any]) -> None:
    """Every target line is PASS or FAIL with its figure; the over-quota fleet's rate target is FAIL, not hidden."""
    statuses = {t["target"]: t["status"] for t in quick["targets"]}
    assert set(statuses.values()) <= {"PASS", "FAIL"}
    over = [t for t in quick["targets"] if "1,000 environments" in t["target"] and "quota" in t["target"]]
    assert [t["status"] for t in over] == ["FAIL"]
    assert all(math.isfinite(r["mean_rps"]) for r in quick["runs"])
