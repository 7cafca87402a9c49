# mailarchive: the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MAILARCHIVE_TEST_CORPUS ?= $(abspath ../shared/corpus)

.PHONY: venv lock run test test-slow lint format check-deploy messages openapi bench bench-quick clean

# Create or refresh the virtualenv: exactly the versions pinned in
# requirements-dev.lock (every file checked against its hash), then the project
# itself on top, without resolving anything again.
$(BIN)/.installed: pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

venv: $(BIN)/.installed

# Re-resolve requirements.lock (the app) and requirements-dev.lock (with the dev
# extra) from pyproject.toml after changing a dependency, in seconds. Pins that
# still fit are kept; `make lock UPGRADE=1` moves every pin to the newest
# release pyproject.toml allows. Commit both files.
LOCK := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 \
	--generate-hashes $(if $(UPGRADE),--upgrade) pyproject.toml
lock:
	@test -x $(BIN)/uv || $(MAKE) venv
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock
	$(BIN)/python scripts/check_lock.py

# Serve http://127.0.0.1:8000/ with a Celery worker and beat; Ctrl-C stops all.
run: venv
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py ensuresiteadmin --base-url http://127.0.0.1:8000
	MAILARCHIVE_HTTPS=$${MAILARCHIVE_HTTPS:-off} $(BIN)/python manage.py runall

# Style, formatting, and the lock files against pyproject.toml.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_lock.py

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests that touch the database differently on SQLite, the database of a
# one-machine install: search by substring instead of full-text indexes, one
# writer at a time (the poll lease, the fetch ledger and message identity
# under concurrent polls, crash safety), bulk import and trash, export and
# feed order, keyset pages, and the pages and admin that write through the
# services (audit log triggers, space deletion, users, mail accounts, health
# and alerts). Tests marked `postgres` need PostgreSQL itself and
# are left out there; the parsing, rendering, protocol and browser tests do
# the same on either database and run once.
SQLITE_TESTS := \
	tests/accounts/test_polling.py tests/accounts/test_services.py \
	tests/accounts/test_tasks.py tests/accounts/test_commands.py \
	tests/accounts/test_crash.py tests/accounts/test_health.py \
	tests/accounts/test_alerts.py \
	tests/accounts/test_views.py tests/spaces tests/users tests/test_admin.py \
	tests/mailarchive/test_ingest.py tests/mailarchive/test_index.py \
	tests/mailarchive/test_threading.py tests/mailarchive/test_search.py \
	tests/mailarchive/test_attachment_text.py tests/mailarchive/test_trash.py \
	tests/mailarchive/test_import.py tests/mailarchive/test_import_command.py \
	tests/mailarchive/test_import_cleanup.py tests/mailarchive/test_export.py \
	tests/mailarchive/test_feeds.py \
	tests/api/test_search.py tests/api/test_messages.py tests/api/test_queries.py

# The whole suite against PostgreSQL, Redis, a Dovecot the suite starts itself
# and headless Chromium (the production layout among it: gunicorn, two Celery
# workers and beat); then SQLITE_TESTS once more on SQLite.
test: venv lint
	scripts/ensure-dovecot
	scripts/ensure-chromium
	$(BIN)/pytest $(PYTEST_ARGS)
	$(BIN)/pytest --ds=tests.settings_sqlite -m 'not slow and not postgres' $(SQLITE_TESTS) $(PYTEST_ARGS)

# The long runs left out of `make test`: the 10,000-message poll killed at
# random moments, the production layout with four worker kills,
# 10,000-message mailboxes, a 200 MB mbox, the property-based tests with a
# thousand examples each (about 20 minutes).
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
