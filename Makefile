# The two commands of the README: `make run` and `make test`. Nothing needs to be
# installed first but Python 3.11+: the virtualenv is created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# `make run PORT=8001`: the web server, the demo webhooks and the printed links follow it.
PORT ?= 8000

.PHONY: install run test test-all test-matrix lint format migrate clean browser-deps

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

migrate: install
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py webhooks_sync_event_types
	$(PY) manage.py seed_demo --receiver-base http://127.0.0.1:$(PORT)
	$(PY) manage.py serve 127.0.0.1:$(PORT)

# The fast suite (a few minutes); `make test-all` adds the real processes, browsers,
# chaos, fuzzing and benchmark smoke runs (tests/conftest.py: SLOW_MODULES), as CI does.
test: install
	$(PY) -m pytest -m "not slow"

test-all: install browser-deps
	$(PY) -m pytest

# axe-core for the portal's accessibility tests (pinned in tests/browser/package-lock.json),
# when npm is there; without it those tests skip, saying so.
AXE := tests/browser/node_modules/axe-core/axe.min.js
browser-deps: $(AXE)
$(AXE): tests/browser/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the portal's accessibility (axe-core) tests will skip"; fi

# Every Python x Django combination the README claims (noxfile.py); pass pytest options
# after --, e.g. `make test-matrix ARGS='-- -m "not slow"'`.
test-matrix: install
	$(VENV)/bin/nox $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) example.sqlite3 .pytest_cache tests/browser/node_modules
