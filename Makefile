# crm-etl: `make` lists the targets. Everything runs in ./.venv, created on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help venv demo test bench lint clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv and install crm-etl with its test tools

demo: $(STAMP) ## run the whole job on the sandbox (generated data, local Bitrix24 + EGRUL)
	$(BIN)/crm-etl demo

# Most e2e tests wait on rate limits and brokers, so two workers halve the wall time even on 2 cores.
TEST_WORKERS ?= 2
test: $(STAMP) ## run every test (CI=true makes a missing service a failure, not a skip)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --durations=15 $(PYTEST_ARGS)

bench: $(STAMP) ## print speed and memory figures with their goals
	$(BIN)/python -m tests.bench

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache build *.egg-info
