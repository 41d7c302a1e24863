"""``python -m confstage``: the admin CLI, the same as the ``confstage`` console script."""

from __future__ import annotations

from confstage.cli import main

if __name__ == "__main__":
    main()
