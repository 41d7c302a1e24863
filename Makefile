# Two commands on a fresh machine: `make demo` and `make test`. Each builds .venv first when needed and
# installs only what it uses: the demo the cli and demo extras, the tests tox (which builds its own
# environments, one per Python, from the demo extra and pyproject.toml's dependency groups). `make dev`
# installs confstage with the demo extra and the dev group (every tool for working in the tree).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test dev lint type docs serve-docs bench build layer clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

# tox >= 4.22 and tox-uv >= 1.16 read the environments' dependency_groups (PEP 735).
$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'tox>=4.22' 'tox-uv>=1.16'
	touch $@

# pip >= 25.1 installs a dependency group (--group, PEP 735), even into a .venv made before it.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e '.[demo,file]' --group dev
	touch $@

demo: $(VENV)/.demo
	$(BIN)/confstage demo

# pytest on every Python 3.10-3.13 present (missing ones skipped), the documentation's blocks and the
# site build, ruff, mypy --strict, and the sdist and wheel built and checked.
test: $(VENV)/.test
	$(BIN)/tox run-parallel --parallel 2 --parallel-no-spinner

dev: $(VENV)/.dev

lint: $(VENV)/.test
	$(BIN)/tox -e lint

type: $(VENV)/.test
	$(BIN)/tox -e type

docs: $(VENV)/.test
	$(BIN)/tox -e docs

serve-docs: $(VENV)/.test
	$(BIN)/tox exec -e docs -- mkdocs serve

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/bench_backends.py

# The sdist and the wheel, built and checked as CI does (twine check --strict, check-wheel-contents).
build: $(VENV)/.test
	$(BIN)/tox -e build

# A Lambda layer (python/ at its root) for PYTHON= (3.12) and ARCH= (x86_64 or arm64), named for both:
# dist/confstage-layer-py3.12-x86_64.zip, so an arm64 build never replaces an x86_64 one.
PYTHON ?= 3.12
ARCH ?= x86_64
layer:
	$(PY) scripts/build_layer.py --python $(PYTHON) --arch $(ARCH)

clean:
	rm -rf $(VENV) .tox site
