# The commands the README gives. `make run` and `make test` each set up what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench compose-check clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

## Run the service: API, a worker and the dashboard on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/wgan-service dev

## Run the whole test suite against real services (see tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wgan app worker service bench

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Run every benchmark and rewrite BENCHMARKS.md
bench: $(STAMP)
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

.PHONY: vendor
## Re-fetch the dashboard's pinned chart library (uPlot) from npm and check its sha512
vendor:
	scripts/vendor-uplot.sh
