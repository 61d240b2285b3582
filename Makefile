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
# Exact versions of everything we install (`make lock` rewrites it): a new machine gets the
# releases the suite last passed with, not whatever is newest that day. The Dockerfile uses it too.
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(PIP) install --progress-bar off --disable-pip-version-check -c $(CONSTRAINTS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List every target with its purpose
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	touch $@

# What `make run` needs: the server alone (SQLite + local storage need no extra).
$(VENV)/.installed-app: pyproject.toml $(CONSTRAINTS) $(VENV)/.created
	@echo "== installing the server into $(VENV) (first run: about a minute)"
	$(PIP_INSTALL) --quiet -e .
	touch $@

# Everything: every extra and the test tools.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(TEST_REQUIREMENTS) $(VENV)/.created
	@echo "== installing the server, every extra and the test tools into $(VENV) (first run: several minutes)"
	$(PIP_INSTALL) -e '.[$(EXTRAS)]' $(foreach f,$(TEST_REQUIREMENTS),-r $(f)) 2>&1 \
	  | grep --line-buffered -E '^(Collecting|Successfully|ERROR|error)'; exit $${PIPESTATUS[0]}
	touch $@ $(VENV)/.installed-app

# checkov lives in a cached venv of its own (its pins fight ours); built here so no test waits.
$(VENV)/.checkov: charts/requirements-checkov.txt charts/constraints-checkov.txt $(VENV)/.installed
	@echo "== building checkov's cached venv (first run: a minute or two)"
	$(PY) -m tests.charts.checkov_venv
	touch $@

node_modules/.installed: package.json $(wildcard package-lock.json)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: install
install: $(VENV)/.installed $(VENV)/.checkov node_modules/.installed ## Create .venv with the server, its extras and the test tools (and Azurite from npm)

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

.PHONY: lock
lock: ## Re-resolve every dependency to its newest allowed release into constraints.txt (then run make test)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[$(EXTRAS)]' $(foreach f,$(TEST_REQUIREMENTS),-r $(f))
	{ sed -n '/^#/p' $(CONSTRAINTS); .lock-venv/bin/pip freeze --exclude-editable --exclude opsml-server; } > $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -r charts/requirements-checkov.txt
	{ sed -n '/^#/p' charts/constraints-checkov.txt; .lock-venv/bin/pip freeze; } > charts/constraints-checkov.txt.new
	mv charts/constraints-checkov.txt.new charts/constraints-checkov.txt
	rm -rf .lock-venv

.PHONY: check
check: lint test ## What CI runs

.PHONY: clean
clean: ## Remove the virtual environment, caches and local data
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache opsml_data
