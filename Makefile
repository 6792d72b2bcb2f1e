# Two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench setup migrate clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(BIN)/flask db upgrade

# The demo: SQLite, the simulated phone network and the file outbox (settings in demo.env).
run: migrate
	set -a && . ./demo.env && set +a && export PATH="$(CURDIR)/$(BIN):$$PATH" && \
	flask demo seed && honcho -f Procfile.dev start

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/checkins.py

clean:
	rm -rf $(VENV) instance .pytest_cache
