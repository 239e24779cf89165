# Two commands set everything up on a fresh machine:
#   make test     create .venv if missing, install dscd with its test extras, run the tests
#   make figures  same install, then regenerate every figure (dscd reproduce --profile quick)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dscd-installed
PROFILE ?= quick
# CIFAR-10 for the quick/paper profiles: the offline copy beside the repository unless DSCD_DATA is set.
DSCD_DATA ?= $(abspath ../shared/data/cifar10-jpg.zip)
export DSCD_DATA

.PHONY: install test figures smoke lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

figures: $(STAMP)
	$(VENV)/bin/dscd reproduce --profile $(PROFILE)

smoke: $(STAMP)
	$(VENV)/bin/dscd reproduce --profile smoke

lint: $(STAMP)
	$(VENV)/bin/ruff check dscd tests benchmarks

clean:
	rm -rf outputs/smoke outputs/quick outputs/paper .pytest_cache
