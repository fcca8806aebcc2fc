# vitalgate developer targets. `make test` and `make demo` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: all venv test test-unit lint fmt bench demo servers fuzz faults clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[sim,demo,dashboard,dev]'
	@touch $(STAMP)

venv: $(STAMP)

servers:
	@bash scripts/install-servers.sh

# The whole suite against real servers started here and stopped at the end (by PID).
test: venv servers
	@state=$$(mktemp /tmp/vitalgate-servers.XXXXXX.json); \
	trap '$(PY) -m tests.support.servers stop '"$$state" EXIT; \
	$(PY) -m tests.support.servers start $$state || exit 1; \
	VITALGATE_TEST_SERVERS=$$state $(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	exit $$rc

# Pure functions only: no servers, no browser.
test-unit: venv
	$(PY) -m pytest -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check vitalgate tests bench
	$(VENV)/bin/ruff format --check vitalgate tests bench
	$(VENV)/bin/mypy --strict vitalgate

fmt: venv
	$(VENV)/bin/ruff format vitalgate tests bench
	$(VENV)/bin/ruff check --fix vitalgate tests bench

bench: venv servers
	$(PY) -m bench.run_all

demo: venv
	$(VENV)/bin/vitalgate demo

fuzz: venv
	$(PY) -m tests.fuzz.run_all

faults: venv servers
	@state=$$(mktemp /tmp/vitalgate-servers.XXXXXX.json); \
	trap '$(PY) -m tests.support.servers stop '"$$state" EXIT; \
	$(PY) -m tests.support.servers start $$state || exit 1; \
	VITALGATE_FAULT_RUNS=$${VITALGATE_FAULT_RUNS:-100} VITALGATE_TEST_SERVERS=$$state \
	  $(PY) -m pytest -p no:cacheprovider tests/faults $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
