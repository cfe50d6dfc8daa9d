# Reelgate developer commands. `make run` starts the service; `make test` runs the whole suite (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench audit clean

# One pip call for both distributions, so pip takes reelgate-client (a dependency of the server) from this checkout.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./clients/python -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/reelgate serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check src tests bench clients/python
	$(PY) -m ruff format --check src tests bench clients/python
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) bench/run_all.py

# Needs PyPI's vulnerability data (or OSV); not part of CI here, whose package mirror does not serve it.
audit: $(STAMP)
	$(PY) -m pip install -q pip-audit
	$(VENV)/bin/pip-audit --skip-editable --strict --progress-spinner off

clean:
	rm -rf $(VENV) reelgate-data
