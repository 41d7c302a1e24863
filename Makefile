# Two commands on a fresh machine: `make demo` and `make test` (each builds .venv first when needed).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint type bench layer clean

$(BIN)/confstage: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

demo: $(BIN)/confstage
	$(BIN)/confstage demo

# Tests on every Python 3.10-3.13 present (missing ones skipped), then ruff and mypy --strict.
test: $(BIN)/confstage
	$(BIN)/tox run-parallel --parallel 2 --parallel-no-spinner

lint: $(BIN)/confstage
	$(BIN)/tox -e lint

type: $(BIN)/confstage
	$(BIN)/tox -e type

bench: $(BIN)/confstage
	$(BIN)/python benchmarks/bench_backends.py

# A Lambda layer (dist/confstage-layer.zip, python/ at its root) for PYTHON= (3.12) and ARCH= (x86_64 or arm64).
PYTHON ?= 3.12
ARCH ?= x86_64
layer:
	$(PY) scripts/build_layer.py --python $(PYTHON) --arch $(ARCH)

clean:
	rm -rf $(VENV) .tox
