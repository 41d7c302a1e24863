"""Invoke handler.py here, as Lambda would through each alias named: ``python invoke.py DEV PRD``.

The environment is the function's (``CONFSTAGE_SOURCES``, ``CONFSTAGE_ALIASES``, the env:// and
kms-env:// variables, ``AWS_LAMBDA_FUNCTION_NAME``); each alias prints what the handler resolved,
one key a line (secrets reduced to their length, JSON values as JSON).
"""

from __future__ import annotations

import json
import os
import sys

from handler import lambda_handler

from confstage.testing import lambda_context


def main(aliases: list[str]) -> None:
    """One invocation per alias, through a fake context whose ARN carries that alias."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "hello")
    for alias in aliases:
        result = lambda_handler({}, lambda_context(alias, function=function))
        for key, value in sorted(result["values"].items()):
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            print(f"{alias:<4} {key:<14} {shown}")


if __name__ == "__main__":
    main(sys.argv[1:])
