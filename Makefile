# opsml-server: every target is non-interactive; `make check` runs exactly what CI runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8888
PYTEST_ARGS ?=
BENCH ?=
EXTRAS ?= dev,postgres,server,gcs,s3,azure
# Test tools of the chart, infra and production suites, installed into the same venv.
TEST_REQUIREMENTS := $(wildcard charts/requirements-test.txt infra/requirements-test.txt tests/production/requirements.txt)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List every target with its purpose
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

# What `make run` needs: the server alone (SQLite + local storage need no extra).
$(VENV)/.installed-app: pyproject.toml $(VENV)/.created
	$(PIP) install --quiet -e .
	touch $@

# Everything: every extra and the test tools.
$(VENV)/.installed: pyproject.toml $(TEST_REQUIREMENTS) $(VENV)/.created
	$(PIP) install --quiet -e '.[$(EXTRAS)]' $(foreach f,$(TEST_REQUIREMENTS),-r $(f))
	touch $@ $(VENV)/.installed-app

node_modules/.installed: package.json $(wildcard package-lock.json)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(VENV)/.installed node_modules/.installed ## Create .venv with the server, its extras and the test tools (and Azurite from npm)

.PHONY: run
run: $(VENV)/.installed-app ## Run the server on the embedded default (SQLite + ./opsml_data) at http://127.0.0.1:8888
	OPSML_TRACKING_URI=$${OPSML_TRACKING_URI:-sqlite:///opsml_data/opsml.db} \
	OPSML_STORAGE_URI=$${OPSML_STORAGE_URI:-./opsml_data/artifacts} \
	$(VENV)/bin/opsml-uvicorn-server --host $(HOST) --port $(PORT)

.PHONY: test
test: install ## Run the whole test suite (API on SQLite and Postgres, storage emulators, chart, infra, real opsml client)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: chart-test
chart-test: $(VENV)/.installed ## Render, lint, validate and scan the Helm chart
	$(VENV)/bin/pytest tests/charts $(PYTEST_ARGS)

.PHONY: infra-test
infra-test: $(VENV)/.installed ## Unit-test the Pulumi programs under mocks
	$(VENV)/bin/pytest tests/infra $(PYTEST_ARGS)

.PHONY: lint
lint: $(VENV)/.installed ## ruff and strict mypy
	$(VENV)/bin/ruff check app tests bench infra
	$(VENV)/bin/ruff format --check app
	$(VENV)/bin/mypy

.PHONY: bench
bench: install ## Benchmarks: 1 GiB transfer, memory, start-up, per-backend throughput, registry load
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk curl)
	$(PY) -m bench $(BENCH)

.PHONY: check
check: lint test ## What CI runs

.PHONY: clean
clean: ## Remove the virtual environment, caches and local data
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache opsml_data
