# Bullpen: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint lock clean

$(VENV)/.installed: requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $@

## Start embedded PostgreSQL + Redis (unless DATABASE_URL/REDIS_URL are set),
## migrate, seed the demo market and run web, worker and beat.
run: $(VENV)/.installed
	$(PY) -m config.devrun run

## Run the whole test suite against real PostgreSQL and Redis.
test: $(VENV)/.installed
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

## Re-resolve requirements.lock from pyproject.toml (needs network access to PyPI).
lock: $(VENV)/.installed
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) var staticfiles
