"""The `exponents` and `lazy_rich` sweeps: presets, validation, a tiny run end to end."""

import dataclasses
import json
import pathlib

import pytest

from spectral_jax.experiments import exponents, lazy_rich
from spectral_jax.sweep import (
    ConfigError,
    Record,
    ResultStore,
    Status,
    load_sweep_config,
    parse_sweep_config,
    run_sweep,
)


def preset_file(name, preset):
    return pathlib.Path(exponents.__file__).parent / "presets" / f"{name}.{preset}.toml"


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_exponents_presets_build(preset):
    config = load_sweep_config(preset_file("exponents", preset))
    runs = config.configurations(exponents.SWEEP)
    assert len(runs) == 10
    assert [(r.alpha, r.beta) for r in runs[:9:3]] == [(2.0, 2.0), (2.0, 3.0), (3.0, 2.5)]
    assert [r.regime for r in runs[:3]] == list(exponents.Regime)
    assert all(r.v0 == 0.2 for r in runs[:9])
    strong = runs[-1]
    assert (strong.alpha, strong.beta, strong.regime, strong.v0) == (2.0, 3.0, "drift", 1.0)
    num_modes, num_times, t_cap = (100_000, 41, 1e5) if preset == "quick" else (1_000_000, 61, 1e6)
    assert {(r.num_modes, r.num_times, r.t_cap, r.late_t_min, r.late_t_max, r.rtol)
            for r in runs} == {(num_modes, num_times, t_cap, 1e4, 1e7, 1e-6)}


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_lazy_rich_presets_build(preset):
    runs = load_sweep_config(preset_file("lazy_rich", preset)).configurations(lazy_rich.SWEEP)
    alphas = [r.alpha for r in runs]
    if preset == "quick":
        assert alphas == [0.5, 1.0, 2.0, 4.0, 8.0]
        assert {(r.n_train, r.dim, r.width, r.t_max, r.num_times) for r in runs} == {
            (16, 4, 32, 30.0, 30)}
    else:
        assert alphas == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
        assert {(r.n_train, r.n_test, r.dim, r.width, r.t_max, r.num_times) for r in runs} == {
            (64, 64, 8, 128, 100.0, 60)}


@pytest.mark.parametrize("sweep, values, match", [
    (exponents, {"regime": "ballistic"}, "not one of"),
    (exponents, {"beta": 1.0}, "beta > 1"),
    (exponents, {"late_t_min": 1e7, "late_t_max": 1e4}, "late_t_min < late_t_max"),
    (exponents, {"regim": "lazy"}, "did you mean 'regime'"),
    (lazy_rich, {"alpha": 0.0}, "alpha"),
    (lazy_rich, {"num_times": 2}, "num_times"),
    (lazy_rich, {"widht": 8}, "did you mean 'width'"),
])
def test_bad_values_raise_config_error(sweep, values, match):
    config = parse_sweep_config({"sweep": sweep.NAME, "fixed": values})
    with pytest.raises(ConfigError, match=match):
        config.configurations(sweep.SWEEP)


def test_parameters_reject_unknown_regime_directly():
    with pytest.raises(ValueError, match="regime must be one of"):
        exponents.Parameters(regime="ballistic")
    stored = {**dataclasses.asdict(exponents.Parameters()), "regime": "drift"}
    assert exponents.Parameters.from_mapping(stored).regime is exponents.Regime.DRIFT


def _failed(sweep, params) -> Record:
    return Record(sweep=sweep.NAME, config_id="0" * 20, config=dataclasses.asdict(params),
                  status=Status.FAILED, outputs={}, error="RuntimeError: boom")


def _check_outputs(tmp_path, name, num_rows):
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert len(saved["exponents"]) == num_rows
    for row in saved["exponents"]:
        assert set(row) == {"quantity", "measured", "ci_low", "ci_high", "predicted"}
        assert row["ci_low"] <= row["measured"] <= row["ci_high"]
    assert [f["error"] for f in saved["failed"]] == ["RuntimeError: boom"]
    return saved


@pytest.mark.slow  # 30-50 s, mostly compiling; `make run` runs the real preset
def test_exponents_tiny_sweep_end_to_end(tmp_path):
    """Lazy and drift on 1000 modes: fits, collapses, and a failed record listed, not fatal."""
    config = parse_sweep_config({
        "sweep": "exponents",
        "fixed": {"num_modes": 1000, "num_times": 16, "late_t_min": 1e2, "late_t_max": 1e4},
        "grid": {"regime": ["lazy", "drift"]},
    })
    runs = config.configurations(exponents.SWEEP)
    outcome = run_sweep(exponents.SWEEP, runs, ResultStore(tmp_path / "store"), progress=False)
    assert outcome.failed == 0 and outcome.computed == 2
    # Report reads stored records only, in any order.
    records = ResultStore(tmp_path / "store").load("exponents")
    records.append(_failed(exponents, runs[0]))
    result = exponents.report(records, tmp_path)
    assert [r["regime"] for r in result["rows"]] == ["lazy", "drift"]
    lazy, drift = result["rows"]
    assert lazy["formula"] == 0.5 and drift["formula"] == 1.0
    assert abs(lazy["micro"] - 0.5) < 0.05 and abs(lazy["ode_late_window"] - 0.5) < 0.05
    assert lazy["micro_steps"] is None and drift["micro_steps"] > 0
    assert result["collapse"]["lazy_spread_lambda_t"] < result["collapse"]["lazy_spread_t_only"]
    assert result["collapse"]["drift_spread_lambda_a_t"] is not None
    saved = _check_outputs(tmp_path, "exponents", 2)
    assert [row["predicted"] for row in saved["exponents"]] == [0.5, 1.0]


def test_lazy_rich_report_from_records(tmp_path):
    """Measures exactly ∝ 1/α: decay exponents 1 against the predicted 1, rows sorted by α."""
    import numpy as np

    records = []
    for i, alpha in enumerate([4.0, 1.0, 8.0, 2.0]):
        outputs = {k: np.asarray(c / alpha) for c, k in enumerate(
            ("kernel_velocity_max", "kernel_path_length", "kernel_change",
             "flux_to_dissipation", "final_loss", "final_test_loss"), start=1)}
        outputs.update(kato_residual_error_max=np.asarray(1e-9), ts=np.geomspace(1e-2, 10, 5),
                       kernel_velocity=np.geomspace(1, 0.1, 5) / alpha)
        records.append(Record(sweep="lazy_rich", config_id=f"{i:020d}", status=Status.OK,
                              config=dataclasses.asdict(lazy_rich.Parameters(alpha=alpha)),
                              outputs=outputs))
    result = lazy_rich.report(records + [_failed(lazy_rich, lazy_rich.Parameters())], tmp_path)
    assert [r["alpha"] for r in result["table"]] == [1.0, 2.0, 4.0, 8.0]
    assert result["all_monotone"]
    for row in result["exponents"]:
        assert row["measured"] == pytest.approx(1.0) and row["predicted"] == 1.0
    _check_outputs(tmp_path, "lazy_rich", 4)


@pytest.mark.slow  # ~35 s of CPU, nearly all of it compiling the flow and its analysis
def test_lazy_rich_tiny_sweep_end_to_end(tmp_path):
    config = parse_sweep_config({
        "sweep": "lazy_rich",
        "fixed": {"n_train": 8, "n_test": 4, "dim": 2, "width": 8, "t_max": 10.0,
                  "num_times": 8},
        "grid": {"alpha": [1.0, 2.0, 4.0]},
    })
    runs = config.configurations(lazy_rich.SWEEP)
    outcome = run_sweep(lazy_rich.SWEEP, runs, ResultStore(tmp_path / "store"), progress=False)
    assert outcome.failed == 0
    records = ResultStore(tmp_path / "store").load("lazy_rich") + [_failed(lazy_rich, runs[0])]
    result = lazy_rich.report(records, tmp_path)
    assert [r["alpha"] for r in result["table"]] == [1.0, 2.0, 4.0]
    assert result["monotone_decreasing"]["kernel_change"]
    saved = _check_outputs(tmp_path, "lazy_rich", 4)
    assert {row["predicted"] for row in saved["exponents"]} == {1.0}


@pytest.mark.parametrize("sweep", [exponents, lazy_rich])
def test_report_of_failed_records_only(sweep, tmp_path):
    """All runs failed: no rows, no fits, no figure, the failures listed, and no crash."""
    result = sweep.report([_failed(sweep, sweep.Parameters())], tmp_path)
    assert result["exponents"] == [] and len(result["failed"]) == 1
    assert (tmp_path / f"{sweep.NAME}.json").exists()
    assert not (tmp_path / f"{sweep.NAME}.png").exists()
