# make test : create .venv when missing (a no-op when up to date), install, run the tests
# make bench: the speed benchmarks quoted in the issue notes
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DPL_DATA_ROOT ?= $(abspath ../shared/data)

.PHONY: install test bench-loss bench-data

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,book]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench-loss: $(STAMP)
	$(PY) benchmarks/loss_speed.py

bench-data: $(STAMP)
	$(PY) benchmarks/data_speed.py
