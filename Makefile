# ChainGate — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
STATE_DIR ?= .chaingate

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.PHONY: setup
setup: $(BIN)/.installed node_modules/.installed ## Install Python deps (.venv) and the local anvil node

.PHONY: run
run: setup ## Run the gateway with a local chain: API on http://127.0.0.1:$(PORT)
	$(BIN)/chaingate dev --port $(PORT) --state-dir $(STATE_DIR)

.PHONY: system-packages
system-packages: ## Install the Debian packages tests drive for real (litecoind, chromium, softhsm2)
	scripts/ensure-system-packages.sh

.PHONY: test
test: setup system-packages ## Install what tests need, then run the whole suite (real nodes, databases, browser)
	$(BIN)/pytest -q -p no:cacheprovider

NIGHTLY_SEEDS ?= 20261122 7 4242

.PHONY: nightly
nightly: setup system-packages ## Long sweeps kept out of `make test`: the 52-kill crash run, once per seed in NIGHTLY_SEEDS
	@for seed in $(NIGHTLY_SEEDS); do \
		echo "== crash sweep, seed $$seed"; \
		CHAINGATE_CRASH_SEED=$$seed $(BIN)/pytest -q -p no:cacheprovider --nightly -m nightly || exit 1; \
	done

.PHONY: reliability-table
reliability-table: setup ## Rewrite the test counts in docs/reliability.md from `pytest --collect-only`
	$(BIN)/python -m tests.support.reliability_doc --write

.PHONY: lint
lint: setup ## ruff (lint + format check), mypy --strict, import contracts (layers)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: bench
bench: setup ## Benchmarks with same-run baselines; results in bench/results/
	$(BIN)/python -m bench.run_all

.PHONY: contracts
contracts: node_modules/.installed ## Recompile the Solidity contracts into src/chaingate/contracts/
	node scripts/compile-contracts.mjs

.PHONY: lock
lock: ## Refresh requirements.lock from the current .venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^chaingate' > requirements.lock

.PHONY: clean
clean: ## Remove the dev state (database, chain) — not the .venv
	rm -rf $(STATE_DIR)
