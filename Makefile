# mailarchive: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MAILARCHIVE_TEST_CORPUS ?= $(abspath ../shared/corpus)

.PHONY: venv run test test-slow lint format check-deploy messages openapi bench bench-quick clean

# Create or refresh the virtualenv with the project and its dev extras installed.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed

# Serve http://127.0.0.1:8000/ with a Celery worker and beat; Ctrl-C stops all.
run: venv
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py ensuresiteadmin --base-url http://127.0.0.1:8000
	MAILARCHIVE_HTTPS=$${MAILARCHIVE_HTTPS:-off} $(BIN)/python manage.py runall

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite against PostgreSQL, Redis, a Dovecot the suite starts itself
# and headless Chromium; then the attachment-text tests once more on SQLite,
# the database of a one-machine install (about half a minute).
test: venv lint
	scripts/ensure-dovecot
	scripts/ensure-chromium
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/pytest --ds=tests.settings_sqlite tests/mailarchive/test_attachment_text.py $(PYTEST_ARGS)

# The long runs left out of `make test`: the 10,000-message poll killed at
# random moments, 10,000-message mailboxes, a 200 MB mbox, the property-based
# tests with a thousand examples each (about 20 minutes).
test-slow: venv
	scripts/ensure-dovecot
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -m slow $(PYTEST_ARGS)

# Regenerate the translation catalogues after changing strings (needs gettext).
messages: venv
	$(BIN)/python manage.py makemessages -l ja --ignore '.venv' --ignore 'var' --ignore 'bench'
	$(BIN)/python manage.py compilemessages -l ja --ignore '.venv' --ignore 'var' --ignore 'bench'

# Regenerate the committed OpenAPI schema after changing the API (a test fails
# until it matches).
openapi: venv
	$(BIN)/python manage.py spectacular --format openapi-json --lang en --validate --fail-on-warn --file docs/openapi.json

# Benchmarks, never part of `make test`: they print figures and assert nothing.
# Both need root (a private Dovecot), PostgreSQL and a few GB of disk, and
# rewrite docs/benchmarks.md and its chart.
$(BIN)/.bench-installed: pyproject.toml $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]' pyinstrument
	@touch $@

# Full run: 1,000,000 messages, 100,000-message poll, 1 GiB mbox (about half an
# hour on two cores).
bench: venv $(BIN)/.bench-installed
	scripts/ensure-dovecot
	$(BIN)/python bench/run.py

# The same measurements with small sizes, in under five minutes.
bench-quick: venv $(BIN)/.bench-installed
	scripts/ensure-dovecot
	$(BIN)/python bench/run.py --quick
