# Two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := $(wildcard collectors probes mapping scorer zhian simulator)

.PHONY: demo test test-deps lint typecheck unit setup setup-dev clean

# The demo needs zhian only; the checks also need the dev tools (ruff, mypy, pytest, hypothesis).
setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy $(PACKAGES)

# Most of the suite waits on real time (windows, deadlines, site starts), so two processes nearly halve
# it on a 2-core machine; every test claims its own 127.N, ports, temp dirs and PostgreSQL cluster.
# TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= 2
unit: setup-dev
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The system packages the tests need: installed where possible, else the skipped groups are named first.
test-deps:
	@bash scripts/test-deps.sh

test: test-deps lint typecheck unit

# zhian run on every device of the large simulated site (minutes); BENCH_ARGS="--scale 0.1" shrinks it.
bench: setup-dev
	$(BIN)/python bench/bench_run_large.py $(BENCH_ARGS)

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
