# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PRESET ?= quick

.PHONY: run run-all test test-fast test-all lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,data]"
	touch $(STAMP)

## The main job: the scaling sweeps, into results/<preset>/ with summary.md (exponent table).
run: $(STAMP)
	$(PY) -m spectral_jax run main --preset $(PRESET)

## Every experiment (the main sweeps and the single-run demonstrations).
run-all: $(STAMP)
	$(PY) -m spectral_jax run all --preset $(PRESET)

## The test suite without the checks marked `slow` (what CI runs). jaxtyping annotations are
## checked at run time (tests/conftest.py); SPECTRAL_JAX_TYPECHECK=0 turns that off.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" -n 2 --durations=15

## The same (kept for muscle memory and older docs).
test-fast: test

## Everything, the long checks marked `slow` included (larger spectra, calibrations).
test-all: $(STAMP)
	$(PY) -m pytest -q --durations=25

## Style check (ruff, configured in pyproject.toml).
lint: $(STAMP)
	$(PY) -m pip install --quiet ruff
	$(PY) -m ruff check spectral_jax experiments tests scripts benchmarks

## Performance suite (prints tables; not a test).
bench: $(STAMP)
	$(PY) scripts/bench_kato.py
	$(PY) scripts/bench_exactness.py
	$(PY) scripts/bench_ntk.py

clean:
	rm -rf $(VENV) results build *.egg-info
