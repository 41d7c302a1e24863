"""User-style code that tests/test_typing.py type-checks with mypy --strict; never imported or run."""
