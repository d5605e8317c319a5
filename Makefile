# Base vs Chat Playground: `make run` starts the playground, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS ?= models.toml
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint typecheck pytest pytest-postgres browser fake-models clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(MODELS):
	cp models.example.toml $(MODELS)

## Set up and start the playground at http://$(HOST):$(PORT)
run: $(STAMP) $(MODELS)
	$(BIN)/playground serve --models $(MODELS) --host $(HOST) --port $(PORT)

## Set up and run linters, type checks and the whole test suite (what CI runs)
test: $(STAMP) browser lint typecheck pytest pytest-postgres

browser:
	bash scripts/install-browser.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy app

pytest: $(STAMP)
	env -u TEST_POSTGRES_URL $(BIN)/pytest -q

## The suite again on a throwaway PostgreSQL server (started, then stopped even on failure)
pytest-postgres: $(STAMP)
	bash scripts/postgres-test-server.sh run $(BIN)/pytest -q --ignore=tests/browser

## Two fake vLLM servers on :8001/:8002 (random words, no model) to try the UI without a GPU
fake-models: $(STAMP)
	$(BIN)/playground fake-server --port 8001 --served-model-name Qwen/Qwen2.5-0.5B & \
	$(BIN)/playground fake-server --port 8002 --served-model-name Qwen/Qwen2.5-0.5B-Instruct; \
	kill %1

clean:
	rm -rf $(VENV) data test-artifacts .mypy_cache .ruff_cache .pytest_cache
