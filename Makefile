# The README's commands. Each target installs what it needs into .venv from the lock file.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
DAYS ?= 7
EVENTS_PER_DAY ?= 20000

.PHONY: install run dev test postgres test-ui screenshots lint bench lock clean aws-sandbox

install: $(VENV)/.installed

# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
# process would otherwise compile Dagster and its dependencies again, 3 s an import.
$(VENV)/.installed: requirements.lock pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

# Simulate the last $(DAYS) full UTC days, build every asset for them through Dagster
# (recorded in $(DAGSTER_HOME), so `make dev` shows the runs), print the daily summary.
run: install
	$(BIN)/purchase-pipeline simulate --last-days $(DAYS) --events-per-day $(EVENTS_PER_DAY)
	$(BIN)/purchase-pipeline materialize --last-days $(DAYS)
	$(BIN)/purchase-pipeline sql "SELECT * FROM kpi_daily_summary ORDER BY dt"
	$(BIN)/purchase-pipeline doctor --quiet

# The settings are checked and the instance created (under a lock, once) before `dagster dev`
# starts its processes, which would otherwise race to create it.
dev: install
	$(BIN)/python -m purchase_pipeline.instance
	$(BIN)/dagster dev -w workspace.yaml

lint: install
	$(BIN)/ruff check purchase_pipeline purchase_pipeline_tests bench
	$(BIN)/ruff format --check purchase_pipeline purchase_pipeline_tests bench

# pytest exits 5 when it collected no test; that is a failure here like any non-zero code.
# The Trino tests install Trino into .trino/ the first time (Maven Central, about 450 MB) and
# skip, saying why, where Java 24+ or Maven is missing; the PostgreSQL tests skip where its
# server is not installed. PURCHASES_REQUIRE_SERVICES=1 (CI) makes either skip a failure.
test: lint postgres
	$(BIN)/python -m pytest -q --durations=12

# Debian's PostgreSQL server for the deployment tests, installed (as root) where it is missing.
# Where it cannot be, those tests skip and say why (a failure under PURCHASES_REQUIRE_SERVICES).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (export DEBIAN_FRONTEND=noninteractive; \
		(apt-get update -q && apt-get install -y -q postgresql) >/dev/null 2>&1 \
		|| echo "PostgreSQL could not be installed: its tests will be skipped")

# The aws target's stand-ins on loopback (moto, and a real Trino over it): prints what to
# export in another shell to run bootstrap, simulate, materialize and sql against them.
aws-sandbox: install
	$(BIN)/python -m purchase_pipeline_tests.services

# The browser tests (marker `ui`, left out of `make test`): dagster dev on a built day, driven
# by headless Chromium. Installs Debian's chromium when it is missing (as root, about a
# minute). `make screenshots` runs them and keeps their screenshots in docs/screenshots/.
test-ui: install
	command -v chromium >/dev/null || (export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q chromium)
	$(BIN)/python -m pytest -q -m ui purchase_pipeline_tests/ui

screenshots:
	PURCHASES_UPDATE_SCREENSHOTS=1 $(MAKE) test-ui

# QUICK=1: every section at sizes that take about half an hour on 2 cores (bench/config.py).
bench: install
	$(BIN)/python -m bench $(if $(QUICK),--quick,)

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 --no-header

clean:
	rm -rf .lake .dagster_home .pytest_cache .ruff_cache
