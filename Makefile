# BatchOps: `make run` opens the TUI on the embedded default with demo data; `make test` passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test check lint bench daemon clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "BatchOps needs Python 3.11 or newer; set PYTHON=python3.11 (or newer).")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/batchops init --demo
	$(BIN)/batchops

test: setup
	$(BIN)/pytest -q -n 2

lint: setup
	$(BIN)/ruff check batchops_core batchops_tui batchops_daemon tests bench
	$(BIN)/ruff format --check batchops_core batchops_tui batchops_daemon tests bench

check: lint test

bench: setup
	$(BIN)/python -m bench

daemon: setup
	$(BIN)/batchops-daemon

clean:
	rm -rf $(VENV) data .pytest_cache bench/out
