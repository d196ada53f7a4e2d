# fleetportal: `make run` brings up the portal with a demo fleet; `make test` runs every check;
# `make bench` measures it (docs/benchmarks.md).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: run test lint bench install

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# The brokers' Mosquitto plugins (Debian: mosquitto-dev, libmosquitto-dev, libssl-dev).
PLUGINS := build/fleetportal_claims.so build/fleetportal_limits.so
build/%.so: mosquitto/%.c
	@mkdir -p build
	$(CC) -shared -fPIC -O2 -Wall -Wextra -Werror -o $@ $< -lcrypto

install: $(VENV)/.installed $(PLUGINS)

run: install
	bin/run

# The test settings use a throwaway key; nothing secret is needed to test. The browser tests drive
# live pages against real time, so they run after the rest, one at a time.
test: export FLEETPORTAL_SECRET_KEY ?= test-only-not-secret
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --ignore=tests/browser
	$(VENV)/bin/pytest tests/browser

# Every bench/ script (bench/suite.py) at a size for this machine, under /tmp/bench.lock, then
# docs/benchmarks.md from their figures. FULL=1: the issues' sizes. ONLY="a b": those entries.
bench: install
	$(PY) bench/run_all.py $(if $(FULL),--full) $(if $(ONLY),--only $(ONLY))

lint: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
