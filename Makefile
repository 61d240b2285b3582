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
# The users' testcontainers class (its own small package; the container suite uses it too).
TESTCONTAINERS_PACKAGE := packages/opsml-server-testcontainers
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
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(TEST_REQUIREMENTS) $(TESTCONTAINERS_PACKAGE)/pyproject.toml $(VENV)/.created
	@echo "== installing the server, every extra and the test tools into $(VENV) (first run: several minutes)"
	$(PIP_INSTALL) -e '.[$(EXTRAS)]' -e $(TESTCONTAINERS_PACKAGE) $(foreach f,$(TEST_REQUIREMENTS),-r $(f)) 2>&1 \
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

# The container suite needs a Docker engine (the tests start dockerd themselves when none
# answers) and debootstrap for the stand-in base image; apt installs both where they are missing.
.PHONY: system-packages
system-packages:
	@if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== installing docker.io and debootstrap with apt"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap >/dev/null; \
	else echo "warning: dockerd or debootstrap is missing; the container tests need a Docker engine"; fi

.PHONY: install
install: system-packages $(VENV)/.installed $(VENV)/.checkov node_modules/.installed ## Create .venv with the server, its extras and the test tools (and Azurite from npm)

.PHONY: run
run: $(VENV)/.installed-app ## Run the server on the embedded default (SQLite + ./opsml_data) at http://127.0.0.1:8888
	OPSML_TRACKING_URI=$${OPSML_TRACKING_URI:-sqlite:///opsml_data/opsml.db} \
	OPSML_STORAGE_URI=$${OPSML_STORAGE_URI:-./opsml_data/artifacts} \
	$(VENV)/bin/opsml-uvicorn-server --host $(HOST) --port $(PORT)

.PHONY: test
test: install ## Run the whole test suite (API on SQLite and Postgres, storage emulators, chart, infra, real opsml clients, the image in Docker)
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	@echo "== the storage tests again, with every emulator in a container (OPSML_TEST_CONTAINERS=1)"
	OPSML_TEST_CONTAINERS=1 $(VENV)/bin/pytest tests/storage $(PYTEST_ARGS) || [ $$? -eq 5 ]

.PHONY: chart-test
chart-test: $(VENV)/.installed ## Render, lint, validate and scan the Helm chart
	$(VENV)/bin/pytest tests/charts $(PYTEST_ARGS)

.PHONY: infra-test
infra-test: $(VENV)/.installed ## Unit-test the Pulumi programs under mocks
	$(VENV)/bin/pytest tests/infra $(PYTEST_ARGS)

BASE_IMAGE ?= python:3.11-slim-bookworm
IMAGE ?= opsml-server:latest
# A Docker engine: $$DOCKER_HOST, the default socket, or one the test tooling starts (as root).
DOCKER_ENV = DOCKER_HOST=$$($(PY) -m tests.support.docker_engine)

.PHONY: image-base
image-base: $(VENV)/.installed system-packages ## Build opsml-python-base:3.11-bookworm from Debian packages, for machines that cannot pull the default base
	$(DOCKER_ENV) docker/build-base.sh opsml-python-base:3.11-bookworm

.PHONY: image
image: $(VENV)/.installed ## Build the production image (IMAGE=opsml-server:latest; BASE_IMAGE=... for a mirror or the image-base stand-in)
	$(DOCKER_ENV) docker build --network host --build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) .

.PHONY: lint
lint: $(VENV)/.installed ## ruff and strict mypy
	$(VENV)/bin/ruff check app tests bench infra packages
	$(VENV)/bin/ruff format --check app packages
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict packages/opsml-server-testcontainers/src

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
