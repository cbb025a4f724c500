# The commands the README gives. `make run` and `make test` each set up what they need first.
PYTHON ?= python3
# Optional: take torch from another wheel index first, e.g. the CPU-only builds (a few hundred MB
# instead of PyPI's CUDA build): make run TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: run test lint format bench clean vendor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What the service needs to run, at the versions the tests ran with (constraints.txt).
$(RUNTIME): pyproject.toml constraints.txt | $(BIN)/python
ifneq ($(TORCH_INDEX_URL),)
	$(BIN)/python -m pip install --quiet --no-deps --index-url $(TORCH_INDEX_URL) -c constraints.txt torch
endif
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

# The runtime plus the test, lint and benchmark tools.
$(DEV): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

## Run the service: API, a worker and the dashboard on http://127.0.0.1:8000
run: $(RUNTIME)
	$(BIN)/wgan-service dev

## Run the whole test suite against real services (see tests/conftest.py)
# Most tests wait on real services (workers, restarts, streams), so two run at once (pytest-xdist), each
# process with its own database and Redis prefix; the tests marked `alone` measure the machine itself and
# run afterwards, by themselves. TEST_PROCESSES=0 runs everything in this one process.
TEST_PROCESSES ?= 2
test: $(DEV)
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) -m "not alone"
	$(BIN)/python -m pytest -m alone

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy wgan app worker service wgan_service bench client/wgan_client
	$(BIN)/lint-imports

format: $(DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Run every benchmark and rewrite BENCHMARKS.md
bench: $(DEV)
	$(BIN)/python -m tests.prepare
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var scratch .mypy_cache .ruff_cache .pytest_cache

## Re-fetch the dashboard's and the API docs' pinned libraries (uPlot, Swagger UI) from npm, checking their sha512
vendor:
	scripts/vendor.sh
