# Omni: `make run` starts the whole app on a fresh machine; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PORT ?= 8000
# `make run HOST=0.0.0.0`; not taken from the environment, where HOST often names the machine.
HOST := 127.0.0.1

# The suite runs on the local PostgreSQL and Redis unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/omni
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_BROKER_URL ?= redis://127.0.0.1:6379/1
PYTEST_ARGS ?=

.PHONY: help venv install run test test-fast lint format vendor bench clean

help:
	@echo "make run    - set up and start Omni (web + Celery worker + beat) with demo data"
	@echo "make test   - the whole test suite on PostgreSQL + Redis, browser tests included"
	@echo "make lint   - ruff check, ruff format --check, mypy"
	@echo "make vendor - refresh front-end libraries in static/vendor from the npm registry"
	@echo "make bench  - run the benchmarks in bench/ (see docs/PERFORMANCE.md)"

$(PY):
	@py=$$(scripts/find_python.sh) || exit 1; \
	  echo "Creating $(VENV) with $$py"; \
	  "$$py" -m venv $(VENV)

venv: $(PY)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[dev]"
	$(PIP) check
	$(PY) scripts/check_versions.py
	@touch $(STAMP)

install: $(STAMP)

# Web (uvicorn) + Celery worker + beat in the foreground; Ctrl-C stops all three. HOST=0.0.0.0 serves
# the store's tablets on the network. Without DATABASE_URL / CELERY_BROKER_URL it runs on the
# embedded default (SQLite + a filesystem broker under var/).
# The demo shop's webhook secret (documented in the README); set your own for a real store.
DEMO_WEBHOOK_SECRET := omni-demo-webhook-secret

run: install
	@DEBUG=$${DEBUG:-1} $(PY) manage.py migrate --no-input
	@DEBUG=$${DEBUG:-1} $(PY) manage.py seed_demo
	@DEBUG=$${DEBUG:-1} SHOPIFY_WEBHOOK_SECRET=$${SHOPIFY_WEBHOOK_SECRET:-$(DEMO_WEBHOOK_SECRET)} \
	  $(PY) manage.py run_omni --port $(PORT) --host $(HOST)

test: install
	@scripts/ensure_browser.sh
	OMNI_TESTING=1 DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	  REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	  $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	OMNI_TESTING=1 $(VENV)/bin/mypy .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

vendor:
	scripts/vendor_frontend.sh

bench: install
	@echo "See docs/PERFORMANCE.md for each benchmark's command."

clean:
	rm -rf $(VENV) var
