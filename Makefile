# Two commands set everything up on a fresh machine:
#   make test     create .venv if missing, install dscd with its test extras, run the tests
#   make figures  same install, then regenerate every figure (dscd reproduce --profile quick)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dscd-installed
PROFILE ?= quick
# CIFAR-10 for the quick/paper profiles: $DSCD_DATA if set; else the offline copy beside the repository
# when there is one; else torchvision's files, fetched once into ~/.cache/dscd/cifar10 by `make data`.
OFFLINE_DATA := $(abspath ../shared/data/cifar10-jpg.zip)
ifeq ($(wildcard $(OFFLINE_DATA)),)
DSCD_DATA ?= cifar10
else
DSCD_DATA ?= $(OFFLINE_DATA)
endif
export DSCD_DATA

.PHONY: install test figures data smoke lint docs report bench clean browser-test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"  # the library and every extra the tests and notebooks use
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

figures: $(STAMP) data
	$(VENV)/bin/dscd reproduce --profile $(PROFILE)

# torchvision's CIFAR-10 download, only when DSCD_DATA names it (cifar10 or cifar10:DIR); a no-op otherwise
data: $(STAMP)
	@case "$(DSCD_DATA)" in cifar10|cifar10:*) $(VENV)/bin/dscd download --data "$(DSCD_DATA)";; esac

smoke: $(STAMP)
	$(VENV)/bin/dscd reproduce --profile smoke

# Every notebook run through JupyterLab's UI in a headless Chromium (Debian's chromium and chromium-driver,
# installed here with apt-get when missing; needs root); not part of `make test`.
browser-test: $(STAMP)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	$(PY) -m pip install -q -e ".[dev,browser]"
	$(PY) -m pytest -m browser tests/test_jupyterlab.py

# the documentation site (Sphinx, warnings as errors) into docs/_build/html; the test suite builds it too
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -E -b html docs docs/_build/html

# re-render the README's headline and the docs' results and benchmarks pages from results/
report: $(STAMP)
	$(VENV)/bin/dscd report

lint: $(STAMP)
	$(VENV)/bin/ruff check dscd tests benchmarks dev
	$(PY) -m mypy  # dscd/, as configured in pyproject.toml

clean:
	rm -rf outputs/smoke outputs/quick outputs/paper .pytest_cache docs/_build docs/notebooks
