# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= quick

.PHONY: run test test-all bench figures clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## The main job (writes results/ and figures).
run: $(STAMP)
	$(PY) -m experiments --preset $(PRESET)

## Fast test suite (what CI runs).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

## Everything, long checks included.
test-all: $(STAMP)
	$(PY) -m pytest -q

## Performance suite (prints tables; not a test).
bench: $(STAMP)
	$(PY) scripts/bench_kato.py

clean:
	rm -rf $(VENV) results build *.egg-info
