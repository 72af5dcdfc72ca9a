# Loupe's entry points: make run | test | venv | bench | bench-NAME | clean | distclean.
SHELL := /bin/bash
.DEFAULT_GOAL := run
.PHONY: run test venv bench clean distclean

VENV := .venv
PY := $(VENV)/bin/python
BOOT_PYTHON := $(shell command -v python3.11 || command -v python3)
# The client package is installed (not editable), so any change to its files re-installs it.
SDK_FILES := $(shell find sdk -type f -not -path '*/build/*' -not -path '*.egg-info*' -not -path '*/__pycache__/*' 2>/dev/null)

$(PY):
	$(BOOT_PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when a requirements file (or the sdk) is newer than its stamp.
$(VENV)/.run-deps: requirements.txt $(SDK_FILES) | $(PY)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install ./sdk
	touch $@

$(VENV)/.test-deps: requirements-test.txt requirements.txt $(SDK_FILES) | $(PY)
	$(PY) -m pip install -r requirements-test.txt
	$(PY) -m pip install ./sdk
	touch $@

venv: $(VENV)/.run-deps $(VENV)/.test-deps

# Migrates, seeds the demo, then supervises redis, gunicorn, celery worker and beat until Ctrl-C.
# PORT (default 8000) and LOUPE_VAR (default var/) pass through: PORT=8001 LOUPE_VAR=var2 make run
run: $(VENV)/.run-deps
	$(PY) scripts/run.py

# Servers first: a missing package fails at once, before minutes of pip.
test:
	scripts/ensure_servers.sh
	$(MAKE) --no-print-directory $(VENV)/.test-deps
	PY=$(PY) scripts/test.sh

# Benchmarks measure the production setup: each bench/NAME.py gets its own throwaway PostgreSQL (bench/_*.py are
# their shared helpers, not benchmarks).
# `make bench` runs them all; `make bench-NAME ARGS="..."` runs one (e.g. make bench-queue ARGS="--rows 1000").
# Run as modules (python -m bench.NAME): as scripts, bench/queue.py would shadow the standard library's queue.
BENCH_ENV := DJANGO_SETTINGS_MODULE=dashboard.settings PYTHONPATH=.
bench: $(VENV)/.test-deps
	scripts/ensure_servers.sh
	@shopt -s nullglob; files=(bench/[!_]*.py); \
	if (( $${#files[@]} == 0 )); then echo "bench: no bench/*.py yet"; exit 0; fi; \
	for f in "$${files[@]}"; do name=$$(basename "$$f" .py); echo "=== $$f"; \
		$(BENCH_ENV) scripts/with_postgres.sh $(PY) -m "bench.$$name" || exit 1; done

bench-%: $(VENV)/.test-deps
	scripts/ensure_servers.sh
	$(BENCH_ENV) scripts/with_postgres.sh $(PY) -m bench.$* $(ARGS)

clean:
	rm -rf var test-output .pytest_cache sdk/build
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV)
