"""The commands, one module per family; each exposes ``COMMANDS``."""
