# The two commands a new user needs: `make demo` and `make test`.
# Everything installs into .venv with pip; nothing else is required but Python 3.11.
# Dependencies come from requirements.lock: exact versions, each file checked
# against its sha256 (`make lock` regenerates it after pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed

LOCK = requirements.lock
RUNTIME_LOCK = requirements-runtime.lock
# uv only resolves (it is fast and writes hashes for every platform's files);
# pip installs. --universal: one lock for Linux, macOS and Windows, Python 3.11+.
COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --universal \
	--python-version 3.11 --custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

.PHONY: setup lock demo up test test-slow lint format bench clean

setup: $(STAMP)

# --require-hashes: a file whose sha256 is not in the lock is refused, so a
# tampered or re-uploaded release cannot slip in. The project itself goes in
# with --no-deps (its dependencies are exactly the lock's); `pip check` then
# fails if pyproject.toml names a dependency the lock lacks (run `make lock`).
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	@touch $(STAMP)

# Regenerate both locks from pyproject.toml, keeping existing pins where they
# still satisfy it; `make lock UPGRADE=1` moves every pin to the newest release.
# The runtime lock (the Docker image's) is constrained by the full one, so both
# pin the same versions.
lock:  ## requirements.lock (+ dev tools) and requirements-runtime.lock from pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv>=0.9,<1"
	$(COMPILE) --extra dev -o $(LOCK)
	$(COMPILE) -c $(LOCK) -o $(RUNTIME_LOCK)

demo: setup  ## a local survey campaign end to end (embedded Redis + sandbox Exotel)
	$(BIN)/dialer demo

up: setup  ## run the whole system until Ctrl-C
	$(BIN)/dialer up

test: setup  ## the test suite (unit, contract, integration, security, fuzz)
	$(BIN)/python -m pytest

# The multi-host test builds test hosts with `ip` (iproute2), a system program
# the suite runs only when asked (tests/support/shellout.py): this target asks.
test-slow: setup  ## long chaos runs (incl. test hosts in network namespaces: root + iproute2)
	DIALER_TEST_TOOLS="$${DIALER_TEST_TOOLS:+$$DIALER_TEST_TOOLS,}ip" $(BIN)/python -m pytest -m slow

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## benchmarks against naive baselines; writes benchmarks/results.{json,md}
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .dialer .pytest_cache .mypy_cache .ruff_cache
