"""Feature-flag evaluation per invocation, warm, beside Powertools' ``FeatureFlags.evaluate``.

``python benchmarks/bench_flags.py [--repeats N] [--target-s S] [--json FILE]``

One 5-rule flag whose context matches only the last rule (every rule is walked), all timed interleaved in
one run (``_harness.ns_interleaved``) and compared by their medians:

* ``confstage.flags().evaluate(...)`` inside an invocation (the Flags object already built: a slot lookup);
* a whole warm ``@confstage.handler`` invocation doing the same (a new invocation: ``flags()`` finds the
  document's text unchanged, so its compiled Flags is a dict lookup away) and the same body with no decorator;
* ``Flags.evaluate`` alone;
* Powertools' ``FeatureFlags.evaluate`` over an in-memory store: the cheapest store it can have (its
  ``AppConfigStore`` adds a cache lookup on top), the document validated once and skipped after.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from _harness import ns_interleaved, summarize

EVALUATE_VS_POWERTOOLS = 10.0  # the issue's target: >= 10x cheaper than Powertools' evaluate, warm, 5 rules

DOCUMENT: dict[str, Any] = {
    "checkout": {
        "default": False,
        "rules": {
            "staff": {
                "when_match": True,
                "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@corp.example"}],
            },
            "gold tier": {"when_match": True, "conditions": [{"action": "EQUALS", "key": "tier", "value": "gold"}]},
            "big basket": {
                "when_match": True,
                "conditions": [{"action": "KEY_GREATER_THAN_VALUE", "key": "items", "value": 50}],
            },
            "beta regions": {
                "when_match": True,
                "conditions": [{"action": "IN", "key": "region", "value": ["eu-west-3", "ap-south-2"]}],
            },
            "one in four": {
                "when_match": True,
                "conditions": [
                    {"action": "MODULO_RANGE", "key": "account", "value": {"BASE": 4, "START": 0, "END": 0}},
                    {"action": "STARTSWITH", "key": "region", "value": "eu-"},
                ],
            },
        },
    },
    "other": {"default": True},
}
CONTEXT = {"email": "ann@example.com", "tier": "silver", "items": 3, "region": "eu-west-1", "account": 1234567890124}

LABELS = {
    "inside": "confstage.flags().evaluate inside an invocation",
    "handler": "a warm @confstage.handler invocation: flags().evaluate",
    "plain": "the same body with no decorator, Flags held",
    "evaluate": "Flags.evaluate alone",
    "powertools": "Powertools FeatureFlags.evaluate (in-memory store)",
}


def measure(*, repeats: int, target_s: float) -> dict[str, Any]:
    """Time the candidates interleaved; {name: summary in ns}, the labels and the ratios."""
    import confstage
    from confstage import _state
    from confstage.testing import MemorySource, lambda_context

    text = json.dumps(DOCUMENT)
    confstage.configure(sources=[MemorySource({"PRD": {"features": text}})], cache_dir="")
    context = lambda_context("PRD")

    @confstage.handler
    def handler(event: Any, ctx: Any) -> Any:
        return confstage.flags().evaluate("checkout", context=event)

    held = confstage.Flags(DOCUMENT)

    def plain(event: Any, ctx: Any) -> Any:
        return held.evaluate("checkout", context=event)

    if handler(CONTEXT, context) is not True or plain(CONTEXT, context) is not True:
        raise AssertionError("the 5-rule flag did not match its last rule")
    candidates: dict[str, tuple[str, dict[str, Any]]] = {
        "inside": ('f().evaluate("checkout", context=c)', {"f": confstage.flags, "c": CONTEXT}),
        "handler": ("h(c, x)", {"h": handler, "c": CONTEXT, "x": context}),
        "plain": ("h(c, x)", {"h": plain, "c": CONTEXT, "x": context}),
        "evaluate": ('e("checkout", context=c)', {"e": held.evaluate, "c": CONTEXT}),
    }
    try:
        from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
        from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
    except ImportError:  # pragma: no cover - Powertools is in the test and bench extras
        pass
    else:

        class DictStore(StoreProvider):
            @property
            def get_raw_configuration(self) -> dict[str, Any]:
                return DOCUMENT

            def get_configuration(self) -> dict[str, Any]:
                return DOCUMENT

        powertools = FeatureFlags(store=DictStore())
        if powertools.evaluate(name="checkout", context=CONTEXT, default=False) is not True:
            raise AssertionError("Powertools disagrees on the 5-rule flag")
        candidates["powertools"] = (
            'e(name="checkout", context=c, default=False)',
            {"e": powertools.evaluate, "c": CONTEXT},
        )
    client = _state.get_client()
    assert client is not None
    invocation = client.begin(context.invoked_function_arn)
    token = _state.enter(invocation)
    try:
        confstage.flags()  # built for the entered invocation: "inside" then times the warm lookup
        timed = ns_interleaved(candidates, repeats=repeats, target_s=target_s)
    finally:
        _state.leave(invocation, token)
        confstage.reset()
    results: dict[str, Any] = {name: summarize(samples, "ns") for name, (samples, _) in timed.items()}
    results["labels"] = {name: LABELS[name] for name in timed}
    if "powertools" in results:
        theirs = results["powertools"]["median"]
        results["ratios"] = {
            name: round(theirs / results[name]["median"], 1) for name in ("inside", "handler", "evaluate")
        }
    return results


def render(results: dict[str, Any]) -> list[str]:
    lines = ["feature flags, a 5-rule flag matching its last rule, warm (median / p99 ns, interleaved)"]
    for name, label in results["labels"].items():
        lines.append(f"  {label:<56} {results[name]['median']:>9.0f} / {results[name]['p99']:.0f}")
    ratios = results.get("ratios")
    if ratios:
        met = ratios["inside"] >= EVALUATE_VS_POWERTOOLS
        target = f"flags().evaluate in an invocation >= {EVALUATE_VS_POWERTOOLS:.0f}x cheaper than Powertools' evaluate"
        whole = f"(a whole @handler invocation: {ratios['handler']}x)"
        lines.append(f"  {'PASS' if met else 'FAIL':<4}  {target}  {ratios['inside']}x {whole}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--target-s", type=float, default=0.05, help="seconds per timed sample (default 0.05)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    results = measure(repeats=args.repeats, target_s=args.target_s)
    print("\n".join(render(results)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
