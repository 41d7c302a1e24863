"""``python -m confstage.cli``: the same as the ``confstage`` console script."""

from __future__ import annotations

from confstage.cli import main

main()
