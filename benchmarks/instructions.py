"""The warm path in CPU instructions (callgrind): deterministic where nanoseconds on a shared machine are not.

``python benchmarks/instructions.py`` runs each case of ``CASES`` under ``valgrind --tool=callgrind`` twice, with
``N`` calls and with none, and prints (instructions of the N-call run - the 0-call run) / N: the cost of one
call, set-up, interpreter start and imports cancelled out. Everything is warm: the values are read once
before the calls counted. The cases are those of the per-invocation benchmark (``_invocation.py``):

* ``handler_3``: a ``@confstage.handler`` function reading 3 warm keys; ``plain_3``: the same body over a dict;
* ``get_inside``: one ``confstage.get`` inside an invocation; ``floor``: a function doing one dict lookup;
* ``config_get``: ``Config.get`` outside any invocation (the TTL checked on each call).

``WARM_COPIES`` measures what each copy on the warm path saves, against a case built from what it copies
(``python benchmarks/instructions.py --copies``); each copy's site points here.

``python benchmarks/instructions.py --run CASE N`` is what runs under valgrind.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

CASES = ("handler_3", "plain_3", "get_inside", "floor", "config_get")
# What no isolated read can go below (``--floors``): ``get_bare``, a ContextVar read and one lookup;
# ``handler_bare``, a wrapper that sets and resets the ContextVar and registers the invocation for worker
# threads (the isolation guarantees), around the same body with 3 such reads.
FLOORS = ("handler_bare", "get_bare")

# The copies on the warm path: (where, the case with the copy, the same without it: calling what it copies).
WARM_COPIES = {
    "@handler's wrapper: Config.begin's first case, _context.enter/leave, bound CURRENT.set/reset": (
        "confstage/decorator.py",
        "handler_3",
        "handler_3_uncopied",
    ),
    "confstage.get: Config.get's lookup": ("confstage/__init__.py", "get_inside", "get_inside_uncopied"),
    "get: positional-or-keyword parameters (keyword-only in the overloads)": (
        "confstage/__init__.py, confstage/client.py",
        "get_inside",
        "get_inside_kwonly",
    ),
    "Config.get: View.fresh(now), inlined": ("confstage/client.py", "fresh_inline", "fresh_call"),
}
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def run(case: str, n: int) -> None:
    """Set the case up, then call it ``n`` times (what callgrind counts, less the 0-call run)."""
    import confstage
    from confstage.testing import MemorySource, lambda_context

    values = {"PRD": {"a": "1", "b": "2", "c": "3"}}
    confstage.configure(sources=[MemorySource(values)], cache_dir="")
    context = lambda_context("PRD")
    get = confstage.get
    plain_values = dict(values["PRD"])

    @confstage.handler
    def handler(event: Any, ctx: Any) -> tuple[str, str, str]:
        return get("a"), get("b"), get("c")

    def plain(event: Any, ctx: Any) -> tuple[str, str, str]:
        return plain_values["a"], plain_values["b"], plain_values["c"]

    def floor(key: str) -> str:
        return plain_values[key]

    outside = confstage.Config(sources=[MemorySource(values)], stage="PRD", cache_dir="")
    uncopied_3 = _uncopied(handler.__wrapped__)  # type: ignore[attr-defined]  # functools.wraps sets it
    if handler({}, context) != ("1", "2", "3") or outside.get("a") != "1":
        raise AssertionError("the cases read wrong values")
    event: dict[str, Any] = {}
    gc.collect()
    gc.disable()  # a collection falling inside one run and not the other would not be the call's cost
    if case == "handler_3":
        for _ in range(n):
            handler(event, context)
    elif case == "plain_3":
        for _ in range(n):
            plain(event, context)
    elif case == "floor":
        for _ in range(n):
            floor("a")
    elif case == "config_get":
        method = outside.get
        for _ in range(n):
            method("a")
    elif case in FLOORS:
        current: Any
        current, set_current, reset_current = (
            confstage._context.CURRENT.get,
            confstage._context.CURRENT.set,
            confstage._context.CURRENT.reset,
        )
        running = confstage._context.RUNNING
        outside.get_many(["a", "b", "c"])
        view = outside.begin(None)

        def get_bare(key: str) -> Any:
            return current().values[key]

        def body(event: Any, ctx: Any) -> tuple[str, str, str]:
            return get_bare("a"), get_bare("b"), get_bare("c")

        def handler_bare(event: Any, ctx: Any) -> Any:
            token = set_current(view)
            key = id(token)
            running[key] = view
            try:
                return body(event, ctx)
            finally:
                running.pop(key, None)
                reset_current(token)

        if case == "handler_bare":
            for _ in range(n):
                handler_bare(event, context)
        else:
            token = set_current(view)
            for _ in range(n):
                get_bare("a")
            reset_current(token)
    elif case == "handler_3_uncopied":
        for _ in range(n):
            uncopied_3(event, context)
    elif case.startswith("get_inside"):
        if case == "get_inside_uncopied":
            one = _get_uncopied(confstage._context.CURRENT.get)
        else:
            one = _kwonly(get) if case == "get_inside_kwonly" else get
        with confstage.bind(context):
            one("a")
            for _ in range(n):
                one("a")
    elif case.startswith("fresh_"):
        from confstage._context import FOREVER

        view = outside.views["PRD"]
        now = outside.clock()
        if case == "fresh_call":
            for _ in range(n):
                fresh = view.fresh(now)
        else:
            for _ in range(n):
                fresh = view.expires is FOREVER or view.expires > now  # noqa: F841  # the test alone, as Config.get has it
    else:
        raise SystemExit(f"unknown case {case!r}; one of {', '.join(CASES)}")


def _uncopied(fn: Any) -> Any:
    """``@handler``'s wrapper made of what it copies: ``Config.begin``, ``_context.enter`` and ``leave``."""
    from confstage import _context

    def wrapper(event: Any, context: Any) -> Any:
        client = _context.client
        assert client is not None
        invocation = client.begin(context.invoked_function_arn)
        token = _context.enter(invocation)
        try:
            return fn(event, context)
        finally:
            _context.leave(invocation, token)

    return wrapper


def _get_uncopied(current: Any) -> Any:
    """``confstage.get`` without its copy of ``Config.get``'s lookup: the invocation's client's get, called."""
    from confstage import MISSING

    def get(key: str, default: Any = MISSING, stage: str | None = None, max_age: float | None = None) -> Any:
        invocation = current()
        return invocation.client.get(key, default)

    return get


def _kwonly(function: Any) -> Any:
    """``function`` (``confstage.get``) with the same body, its last three parameters keyword-only."""
    import types

    code = function.__code__.replace(co_argcount=2, co_kwonlyargcount=3)
    defaults = function.__defaults__
    made = types.FunctionType(code, function.__globals__, function.__name__, defaults[:1])
    made.__kwdefaults__ = dict(zip(code.co_varnames[2:5], defaults[1:], strict=True))
    return made


def count(case: str, n: int) -> int:
    """Instructions callgrind counts for ``run(case, n)`` in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        # The same dict layouts in both runs; none of the caller's confstage or Lambda settings (a benchmark run
        # sets CONFSTAGE_METRICS=emf or a function name for its own cases: an EMF line per call is not the warm path).
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFSTAGE_", "AWS_LAMBDA_"))}
        env["PYTHONHASHSEED"] = "0"
        subprocess.run([*command, "--run", case, str(n)], check=True, capture_output=True, env=env)
        with open(out, "rb") as file:
            found = _TOTAL.search(file.read())
    if found is None:
        raise RuntimeError("callgrind wrote no total")
    return int(found.group(1))


def per_call(case: str, n: int = 5_000) -> float:
    """Instructions of one call of ``case``: (the ``n``-call run - the 0-call run) / ``n``."""
    return (count(case, n) - count(case, 0)) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs=2, metavar=("CASE", "N"), help="run one case (under valgrind)")
    parser.add_argument("-n", type=int, default=20_000, help="calls counted per case")
    parser.add_argument("--copies", action="store_true", help="what each copy on the warm path saves")
    parser.add_argument("--floors", action="store_true", help="the floors of an isolated read and invocation")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return
    if args.copies:
        for what, (where, copied, uncopied) in WARM_COPIES.items():
            saved = per_call(uncopied, args.n) - per_call(copied, args.n)
            print(f"{what} ({where}): saves {saved:,.0f} instructions a call")
        return
    for case in FLOORS if args.floors else args.cases:
        print(f"{case:<12} {per_call(case, args.n):>9,.0f} instructions a call")


if __name__ == "__main__":
    main()
