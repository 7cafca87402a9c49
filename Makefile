# mailarchive: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MAILARCHIVE_TEST_CORPUS ?= $(abspath ../shared/corpus)

.PHONY: venv run test lint format check-deploy messages bench bench-quick clean

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
	$(BIN)/python manage.py ensuresiteadmin
	MAILARCHIVE_HTTPS=$${MAILARCHIVE_HTTPS:-off} $(BIN)/python manage.py runall

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole suite against PostgreSQL, Redis, a Dovecot the suite starts itself
# and headless Chromium.
test: venv lint
	scripts/ensure-dovecot
	scripts/ensure-chromium
	$(BIN)/pytest $(PYTEST_ARGS)

# Regenerate the translation catalogues after changing strings (needs gettext).
messages: venv
	$(BIN)/python manage.py makemessages -l ja --ignore '.venv' --ignore 'var'
	$(BIN)/python manage.py compilemessages --ignore '.venv'
