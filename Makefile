# The two set-up commands (README): `make demo` runs the monthly cycle on the demo company,
# `make test` runs the test suite. Both create the virtual environment on first use.

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
CYCLE ?= 2026-11
FIRST_CYCLE ?= 2026-08
LAST_CYCLE ?= 2026-10
CEO ?= Dana Whitfield (CEO)
DEMO_SKUS ?= 300
export SOP_DATA_DIR ?= $(CURDIR)/demo_data
export SOP_WAREHOUSE ?= $(CURDIR)/warehouse/sop.duckdb

.PHONY: install lock demo test dev clean

# The exact versions of requirements.lock, then the project itself without resolving again.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# Refresh the lock after changing pyproject.toml's dependencies.
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet --custom-compile-command "make lock" -o requirements.lock

install: $(VENV)/.installed

demo: install
	$(BIN)/sop demo-data --out $(SOP_DATA_DIR) --skus $(DEMO_SKUS) --cycle $(CYCLE)
	$(BIN)/sop backfill --from $(FIRST_CYCLE) --to $(LAST_CYCLE)
	@# Last month's meeting: the plan of record the next cycle is measured against, and the decisions it follows up.
	$(BIN)/sop approve --cycle $(LAST_CYCLE) --scenario baseline --by "$(CEO)" --note "Approved in the executive S&OP meeting"
	$(BIN)/sop demo-meeting --cycle $(LAST_CYCLE) --by "$(CEO)"
	$(BIN)/sop run --cycle $(CYCLE)
	$(BIN)/sop approve --cycle $(CYCLE) --scenario baseline --by "$(CEO)" --note "Approved in the executive S&OP meeting"
	$(BIN)/sop status --cycle $(CYCLE)

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

dev: install
	mkdir -p .dagster && cp -n orchestration/dagster.yaml .dagster/dagster.yaml || true
	DAGSTER_HOME=$(CURDIR)/.dagster $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf demo_data warehouse .dagster transforms/target
