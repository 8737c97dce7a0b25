# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= quick

.PHONY: run test test-fast lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## The main job (writes results/ and figures).
run: $(STAMP)
	$(PY) -m experiments --preset $(PRESET)

## The whole test suite, long checks included (what CI runs; about 5 minutes on 2 CPU cores).
test: $(STAMP)
	$(PY) -m pytest -q

## Without the tests marked `slow`, for quick local iteration.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

## Style check (ruff, configured in pyproject.toml).
lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check spectral_jax experiments tests scripts

## Performance suite (prints tables; not a test).
bench: $(STAMP)
	$(PY) scripts/bench_kato.py
	$(PY) scripts/bench_ntk.py

clean:
	rm -rf $(VENV) results build *.egg-info
