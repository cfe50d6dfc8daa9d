# Reelgate developer commands. `make run` starts the service; `make test` runs the whole suite (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench audit clean

# One pip call for both distributions, so pip takes reelgate-client (a dependency of the server) from this checkout.
# Under a lock, and checked again once the lock is held: `make run` and `make test` started together in a fresh
# clone install once (the second waits, then finds the stamp fresh) instead of racing to create the same venv.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@flock $(VENV).lock sh -c '\
	  if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ] && [ $(STAMP) -nt clients/python/pyproject.toml ]; then \
	    echo "$(VENV) is ready (installed by another make)"; exit 0; fi; \
	  set -ex; python3 -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip; \
	  $(PY) -m pip install -q -e ./clients/python -e ".[dev]"; \
	  touch $(STAMP)'

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/reelgate serve --host 127.0.0.1 --port 8000

# Two pytest processes: most of the suite waits on real servers, processes and sockets, so two halve its time on
# two cores. worksteal (not loadfile): a process that runs out of files takes tests from the other's, so the tail
# is not one process finishing alone (10 min 41 s -> 9 min 57 s in a clean clone, docs/benchmarks.md).
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist worksteal

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
	rm -rf $(VENV) $(VENV).lock reelgate-data
