# Sieve: `make run` serves the app with its embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000

.PHONY: run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps re-install when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[gpu]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[gpu,dev]'
	touch $@

# DEBUG is off unless set: the local server, its worker and the tests turn it on.
run test: export DEBUG = 1

run: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --if-empty --url http://$(HOST)/
	@echo "Serving Sieve on http://$(HOST)/ with two local Celery workers: default,gpu and search (Ctrl-C stops all)"
	@$(BIN)/celery -A annotate worker -Q default,gpu --concurrency 1 --loglevel WARNING \
		--beat --schedule var/celerybeat-schedule & \
	worker=$$!; \
	$(BIN)/celery -A annotate worker -Q search --pool solo -n search@%h --loglevel WARNING & \
	search=$$!; \
	trap 'kill -TERM $$worker $$search 2>/dev/null; wait $$worker $$search 2>/dev/null' EXIT; \
	trap 'exit 0' INT TERM; \
	$(BIN)/python manage.py runserver $(HOST)

# Services (state changes), selectors (permission-checked reads) and the engine are typed.
TYPED := annotate/datasets/access.py annotate/*/selectors.py annotate/*/services.py \
	classifier/selectors.py classifier/services.py classifier/engine.py classifier/prompts.py \
	classifier/search.py classifier/search_jobs.py classifier/search_worker.py \
	annotate/validation/searching.py annotate/validation/suspects.py annotate/validation/duplicates.py \
	classifier/probe.py annotate/validation/probing.py annotate/validation/curation.py \
	annotate/validation/curated_export.py annotate/validation/curated_jobs.py

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy $(TYPED)
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf var .pytest_cache
