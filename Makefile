# Two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := $(wildcard collectors probes mapping scorer zhian simulator)

.PHONY: demo test lint typecheck unit setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy $(PACKAGES)

unit: setup
	$(BIN)/pytest -q

test: lint typecheck unit

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
