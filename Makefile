# make book : .venv, the offline preset (resumable), the analysis notebooks, the book (HTML)
# make test : create .venv when missing (a no-op when up to date), install, run every test (CI runs this)
# make test-fast : the inner loop while developing: the tests not marked slow (no end-to-end runs, no book, no kernels, no simulations)
# make lab  : JupyterLab with the project's kernel
# make bench-loss / bench-data / bench-steps / bench-points: the speed benchmarks quoted in the issue notes
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PRESET ?= offline
WORKERS ?= 2
export DPL_DATA_ROOT ?= $(abspath ../shared/data)
# Bytecode of every process make starts (the tests, their kernels and subprocesses, the book, the
# lab) is cached under the venv: each module is compiled on its first import, once, and read back
# after, whatever PYTHONDONTWRITEBYTECODE says elsewhere; nothing is written into the checkout.
# (Compiling all of site-packages at install took 70 s of a fresh `make test`, most of it for
# modules no process imports.)
export PYTHONPYCACHEPREFIX := $(abspath $(VENV))/pycache
export PYTHONDONTWRITEBYTECODE :=

.PHONY: install test test-fast book lab browser bench-loss bench-data bench-steps bench-points

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e '.[test,book]'
	touch $(STAMP)

test: $(STAMP) browser
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

book: $(STAMP)
	$(PY) -m dpllib.cli book --preset $(PRESET) --workers $(WORKERS)
	@echo "open $(abspath book/_build/html/index.html)"

lab: $(STAMP)
	$(PY) -m dpllib.cli lab

# Debian's Chromium for the book's browser test (playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "the browser test needs Chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

bench-loss: $(STAMP)
	$(PY) -m dpllib.cli bench loss_speed

bench-data: $(STAMP)
	$(PY) -m dpllib.cli bench data_speed

bench-steps: $(STAMP)
	$(PY) -m dpllib.cli bench step_cost

bench-points: $(STAMP)
	$(PY) -m dpllib.cli bench point_cost
