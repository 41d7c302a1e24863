"""The warm path in CPU instructions (callgrind): deterministic where nanoseconds on a shared machine are not.

``python benchmarks/instructions.py`` runs each case of ``CASES`` under ``valgrind --tool=callgrind`` twice, with
``N`` calls and with none, and prints (instructions of the N-call run - the 0-call run) / N: the cost of one
call, set-up, interpreter start and imports cancelled out. Everything is warm: the values are read once
before the calls counted. The cases are those of the per-invocation benchmark (``_invocation.py``):

* ``handler_3``: a ``@confstage.handler`` function reading 3 warm keys; ``plain_3``: the same body over a dict;
* ``get_inside``: one ``confstage.get`` inside an invocation; ``floor``: a function doing one dict lookup;
* ``config_get``: ``Config.get`` outside any invocation (the TTL checked on each call).

``python benchmarks/instructions.py --run CASE N`` is what runs under valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

CASES = ("handler_3", "plain_3", "get_inside", "floor", "config_get")
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
    if handler({}, context) != ("1", "2", "3") or outside.get("a") != "1":
        raise AssertionError("the cases read wrong values")
    event: dict[str, Any] = {}
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
    elif case == "get_inside":
        with confstage.bind(context):
            get("a")
            for _ in range(n):
                get("a")
    else:
        raise SystemExit(f"unknown case {case!r}; one of {', '.join(CASES)}")


def count(case: str, n: int) -> int:
    """Instructions callgrind counts for ``run(case, n)`` in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
        subprocess.run([*command, "--run", case, str(n)], check=True, capture_output=True)
        with open(out, "rb") as file:
            found = _TOTAL.search(file.read())
    if found is None:
        raise RuntimeError("callgrind wrote no total")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", nargs=2, metavar=("CASE", "N"), help="run one case (under valgrind)")
    parser.add_argument("-n", type=int, default=20_000, help="calls counted per case")
    parser.add_argument("cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return
    for case in args.cases:
        per_call = (count(case, args.n) - count(case, 0)) / args.n
        print(f"{case:<12} {per_call:>9,.0f} instructions a call")


if __name__ == "__main__":
    main()
