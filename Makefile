# The two commands a new user needs: `make demo` and `make test`.
# Everything installs into .venv with pip; nothing else is required but Python 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

.PHONY: setup demo up test test-slow lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: setup  ## a local survey campaign end to end (embedded Redis + sandbox Exotel)
	$(BIN)/dialer demo

up: setup  ## run the whole system until Ctrl-C
	$(BIN)/dialer up

test: setup  ## the test suite (unit, contract, integration, security, fuzz)
	$(BIN)/python -m pytest

test-slow: setup  ## long chaos runs
	$(BIN)/python -m pytest -m slow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## benchmarks against naive baselines; writes benchmarks/results.{json,md}
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .dialer .pytest_cache .mypy_cache .ruff_cache
