"""Per-invocation costs as users run them: a ``@confstage.handler`` reading warm keys, beside Powertools.

Everything is warm (values cached, clients made); all candidates are timed interleaved in one run, so a
burst of load on the machine hits them alike, and the medians are compared:

* a ``@confstage.handler`` function reading 3 keys, the same function body reading 3 keys from a plain
  dict (no decorator), and 3 cached ``DynamoDBProvider.get`` calls of Powertools;
* one ``confstage.get`` inside an invocation, a function doing one dict lookup, one Powertools cached get;
* ``Config.get`` outside any invocation (the TTL checked on every call).

Beside the nanoseconds, the CPU instructions of each confstage case and its floor (``instructions.py``, under
callgrind: deterministic where a shared machine's nanoseconds are not), unless ``--quick`` or valgrind is absent.
The targets (issue 21, item 5) are ratios of medians of the same run. They guard the copies on the warm path
(``decorator``'s docstring lists them): a copy that no longer saves what it claims shows here first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from _harness import ns_interleaved, summarize

HANDLER_VS_PLAIN = 7.0  # a @handler invocation reading 3 warm keys, at most this many times the same body over a dict
HANDLER_VS_POWERTOOLS = 6.0
INSIDE_VS_FLOOR = 2.0
INSIDE_VS_POWERTOOLS = 15.0
OUTSIDE_VS_POWERTOOLS = 8.0

LABELS = {
    "handler_3": "a @confstage.handler function reading 3 keys",
    "plain_3": "the same body reading 3 keys from a plain dict",
    "powertools_3": "3 cached DynamoDBProvider.get calls (Powertools)",
    "get_inside": "one confstage.get inside a handler",
    "floor": "a function doing one dict lookup",
    "powertools_get": "one Powertools cached get",
    "config_get": "Config.get outside any handler",
    "powertools_get_outside": "one Powertools cached get (timed with Config.get)",
}


def measure(
    url: str,
    stage: str,
    keys: Sequence[str],
    values: dict[str, str],
    powertools_get: Callable[..., Any] | None,
    powertools_name: Callable[[str], str],
    *,
    repeats: int,
    target_s: float,
    cache_dir: str,
    instructions: bool = False,
) -> dict[str, Any]:
    """Time the candidates interleaved; returns {name: summary in ns} plus the labels (and, with ``instructions``,
    ``{"instructions": {name: per call}}`` of the confstage cases and their floors)."""
    import confstage
    from confstage import _context as state
    from confstage.testing import lambda_context

    three = list(keys[:3])
    a, b, c = three
    confstage.configure(sources=[url], cache_dir=cache_dir)
    context = lambda_context(stage)
    get = confstage.get

    @confstage.handler
    def handler(event: Any, ctx: Any) -> tuple[str, str, str]:
        return get(a), get(b), get(c)

    plain_values = {k: values[k] for k in three}

    def plain(event: Any, ctx: Any) -> tuple[str, str, str]:
        return plain_values[a], plain_values[b], plain_values[c]

    def floor(key: str) -> str:
        return plain_values[key]

    if handler({}, context) != tuple(values[k] for k in three):
        raise AssertionError("the handler read wrong values")
    outside = confstage.Config(sources=[url], stage=stage, cache_dir=cache_dir)
    outside.get_many(three)
    # An invocation entered for the whole timing of "get_inside" (what the handler body does between reads).
    client = state.get_client()
    assert client is not None
    invocation = client.begin(context.invoked_function_arn)
    candidates: dict[str, tuple[str, dict[str, Any]]] = {
        "handler_3": ("h(e, c)", {"h": handler, "e": {}, "c": context}),
        "plain_3": ("h(e, c)", {"h": plain, "e": {}, "c": context}),
        "get_inside": ("g(k)", {"g": get, "k": a}),
        "floor": ("g(k)", {"g": floor, "k": a}),
    }
    # Config.get outside any handler is timed with no invocation in force (inside one, another client's get takes
    # the slow path: the invocation is not its own), interleaved with Powertools' cached get for its ratio.
    apart: dict[str, tuple[str, dict[str, Any]]] = {"config_get": ("g(k)", {"g": outside.get, "k": a})}
    if powertools_get is not None:
        names = [powertools_name(k) for k in three]
        for name in names:
            powertools_get(name, max_age=300)
        candidates["powertools_3"] = (
            "g(n0, max_age=300); g(n1, max_age=300); g(n2, max_age=300)",
            {"g": powertools_get, "n0": names[0], "n1": names[1], "n2": names[2]},
        )
        candidates["powertools_get"] = ("g(n, max_age=300)", {"g": powertools_get, "n": names[0]})
        apart["powertools_get_outside"] = candidates["powertools_get"]
    token = state.enter(invocation)
    try:
        # ns_interleaved runs every candidate in this thread, so "get_inside" reads the entered invocation;
        # the handler enters its own on each call and leaves this one in force afterwards.
        timed = ns_interleaved(candidates, repeats=repeats, target_s=target_s)
    finally:
        state.leave(invocation, token)
    try:
        timed.update(ns_interleaved(apart, repeats=repeats, target_s=target_s))
    finally:
        confstage.reset()
    results: dict[str, Any] = {name: summarize(samples, "ns") for name, (samples, _) in timed.items()}
    results["labels"] = {name: LABELS[name] for name in timed}
    if instructions:
        import instructions as counted

        results["instructions"] = {case: round(counted.per_call(case)) for case in counted.CASES}
    return results


def targets(per: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for the issue's per-invocation targets; instruction counts beside, when counted."""
    med = {name: float(summary["median"]) for name, summary in per.items() if name not in ("labels", "instructions")}
    counts = per.get("instructions") or {}

    def beside(a: str, b: str) -> str:
        return f"; {counts[a]:,} vs {counts[b]:,} instructions" if a in counts and b in counts else ""

    out: list[tuple[str, bool, str]] = [
        (
            f"@handler reading 3 warm keys <= {HANDLER_VS_PLAIN:.0f}x the same body over a dict",
            med["handler_3"] <= HANDLER_VS_PLAIN * med["plain_3"],
            f"{med['handler_3'] / med['plain_3']:.1f}x ({med['handler_3']:.0f} vs {med['plain_3']:.0f} ns"
            f"{beside('handler_3', 'plain_3')})",
        ),
        (
            f"warm get inside a handler <= {INSIDE_VS_FLOOR:.0f}x a dict-lookup function",
            med["get_inside"] <= INSIDE_VS_FLOOR * med["floor"],
            f"{med['get_inside'] / med['floor']:.2f}x ({med['get_inside']:.0f} vs {med['floor']:.0f} ns"
            f"{beside('get_inside', 'floor')})",
        ),
    ]
    if "powertools_3" in med:
        out += [
            (
                f"@handler reading 3 keys >= {HANDLER_VS_POWERTOOLS:.0f}x cheaper than 3 Powertools cached gets",
                med["powertools_3"] >= HANDLER_VS_POWERTOOLS * med["handler_3"],
                f"{med['powertools_3'] / med['handler_3']:.1f}x "
                f"({med['handler_3']:.0f} vs {med['powertools_3']:.0f} ns)",
            ),
            (
                f"warm get inside a handler >= {INSIDE_VS_POWERTOOLS:.0f}x faster than Powertools' cached get",
                med["powertools_get"] >= INSIDE_VS_POWERTOOLS * med["get_inside"],
                f"{med['powertools_get'] / med['get_inside']:.1f}x",
            ),
            (
                f"Config.get outside a handler >= {OUTSIDE_VS_POWERTOOLS:.0f}x faster than Powertools' cached get",
                med["powertools_get_outside"] >= OUTSIDE_VS_POWERTOOLS * med["config_get"],
                f"{med['powertools_get_outside'] / med['config_get']:.1f}x "
                f"({med['config_get']:.0f} vs {med['powertools_get_outside']:.0f} ns"
                f"{'; ' + format(counts['config_get'], ',') + ' instructions' if 'config_get' in counts else ''})",
            ),
        ]
    return out


def render(per: dict[str, Any]) -> list[str]:
    """The per-invocation table, first in the report."""
    counts = per.get("instructions") or {}
    lines = ["per invocation, all values warm (median / p99 ns, interleaved; CPU instructions, callgrind)"]
    for name, label in per["labels"].items():
        summary = per[name]
        count = f"{counts[name]:>9,}" if name in counts else ""
        lines.append(f"  {label:<52} {summary['median']:>9.0f} / {summary['p99']:<7.0f} {count}")
    for target, met, measured in targets(per):
        lines.append(f"  {'PASS' if met else 'FAIL':<4}  {target}  {measured}")
    return lines
