# Base vs Chat Playground: `make run` starts the playground, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODELS ?= models.toml
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run vllm demo-models test lint typecheck pytest pytest-postgres browser fake-models clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up and start the playground at http://$(HOST):$(PORT): models.toml if present, else the
## default pair launched in vLLM (or, without access to the model hub, the built-in demo pair)
run: $(STAMP) vllm
	$(BIN)/playground serve $(if $(wildcard $(MODELS)),--models $(MODELS)) --host $(HOST) --port $(PORT)

## vLLM in its own virtualenv (.venv-vllm): the CUDA build with an NVIDIA GPU, else the CPU build
vllm:
	bash scripts/setup-vllm.sh

## Build (or reuse) the offline demo family (base, chat, LoRA adapter) in ~/.cache/playground-demo-models
demo-models: $(STAMP) vllm
	$(BIN)/playground demo-models

## Set up and run linters, type checks and the whole test suite (what CI runs)
test: $(STAMP) browser vllm lint typecheck pytest pytest-postgres

browser:
	bash scripts/install-browser.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy app bench playground_tools

pytest: $(STAMP)
	env -u TEST_POSTGRES_URL $(BIN)/pytest -q

## The suite again on a throwaway PostgreSQL server (started, then stopped even on failure);
## the browser and real-vLLM tests, which exercise no database code of their own, run once above
pytest-postgres: $(STAMP)
	bash scripts/postgres-test-server.sh run $(BIN)/pytest -q --ignore=tests/browser -m "not vllm"

## Two fake vLLM servers on :8001/:8002 (random words, no model) to try the UI without a GPU
fake-models: $(STAMP)
	$(BIN)/playground fake-server --port 8001 --served-model-name Qwen/Qwen2.5-0.5B & \
	$(BIN)/playground fake-server --port 8002 --served-model-name Qwen/Qwen2.5-0.5B-Instruct; \
	kill %1

clean:
	rm -rf $(VENV) data test-artifacts .mypy_cache .ruff_cache .pytest_cache
