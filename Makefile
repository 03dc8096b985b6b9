# Two entry points that work on a fresh Debian machine:
#   make demo   emulator + simulated BMCs + agent + dashboard on embedded defaults
#   make test   lint, type check and the whole test suite against real peers
# While editing: make check (lint, type check, unit tests but the slow fuzz runs; no sockets).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test check demo lint unit bench sysdeps venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

sysdeps:
	bash scripts/install-system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check agent baremetal boot_hooks tests
	$(VENV)/bin/mypy agent baremetal boot_hooks
	$(VENV)/bin/lint-imports

test: sysdeps $(STAMP) lint
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

check: lint $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests/unit

bench: sysdeps $(STAMP)
	$(PY) -m tests.bench.run_all

demo: sysdeps $(STAMP)
	$(VENV)/bin/bm-agent demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache test-artifacts
