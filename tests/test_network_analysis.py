"""Spectral-shell analysis of recorded runs: consistency, lazy test error, frozen-kernel limit."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from helpers import mlp_run, random_features_run

from spectral_jax.networks import TrainingMethod, analyze_training


def _lazy_oracle(record):
    """f_t(x*) = f_0(x*) - K(x*,X)/n ∫_0^t exp(-M s) ds e(0), the integral from one expm of an
    augmented matrix (no eigendecomposition): expm([[-M, I], [0, 0]] t) = [[e^{-Mt}, ∫], ...]."""
    m = np.asarray(record.kernels[0])
    n = m.shape[0]
    aug = np.zeros((2 * n, 2 * n))
    aug[:n, :n], aug[:n, n:] = -m, np.eye(n)
    cross = np.asarray(record.test_kernels[0]) / n
    e0, f0 = np.asarray(record.residuals[0]), np.asarray(record.test_predictions[0])
    y = np.asarray(record.y_test)
    out = []
    for t in np.asarray(record.ts - record.ts[0]):
        integral = scipy.linalg.expm(aug * t)[:n, n:]
        pred = f0 - cross @ integral @ e0
        out.append(np.sum((pred - y) ** 2) / (2 * y.shape[0]))
    return np.array(out)


@pytest.fixture(scope="module")
def mlp_analysis():
    _, _, record = mlp_run()
    return record, analyze_training(record)


def test_mlp_analysis_is_consistent(mlp_analysis):
    record, an = mlp_analysis
    assert float(jnp.max(an.residual_error)) <= 1e-4
    # Shell energies partition the residual energy ‖e‖² at every time.
    total = np.asarray(jnp.sum(an.budget.energy, axis=-1))
    np.testing.assert_allclose(total, 2 * record.n * np.asarray(record.loss), rtol=1e-4)
    S = an.shells.num_shells
    assert an.budget.flux.shape == (record.ts.shape[0], S - 1)
    # Feature learning: energy does move between shells, and the kernel moves.
    assert 1e-3 < float(an.flux_to_dissipation) < 10.0
    assert float(an.kernel_change) > 0.1
    assert an.frontier.shell.shape == record.ts.shape


def test_test_error_by_shell_matches_independent_lazy_prediction(mlp_analysis):
    record, an = mlp_analysis
    oracle = _lazy_oracle(record)
    np.testing.assert_allclose(np.asarray(an.lazy_test_error), oracle, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(an.test_error_by_shell[:, -1]), oracle, rtol=1e-8)
    untrained = float(record.test_loss[0])
    # At t=0 no shell has learned anything; per-shell gains add up to the total improvement.
    np.testing.assert_allclose(np.asarray(an.test_error_by_shell[0]), untrained, rtol=1e-12)
    gains = np.asarray(jnp.sum(an.test_error_gain_by_shell, axis=-1))
    np.testing.assert_allclose(gains, untrained - oracle, atol=1e-12)
    # Early on only the top shells have moved: the frontier has not reached the tail.
    early = int(np.searchsorted(np.asarray(record.ts), 0.05))
    assert abs(float(an.test_error_gain_by_shell[early, -1])) < 1e-6


def test_random_features_analysis_is_exactly_lazy():
    _, _, _, record = random_features_run()
    an = analyze_training(record)
    assert float(jnp.max(jnp.abs(an.budget.flux))) == 0.0
    assert float(an.flux_to_dissipation) == 0.0
    assert float(an.kernel_change) < 1e-14
    # A model linear in its trained parameters: the lazy prediction is the network's.
    np.testing.assert_allclose(
        np.asarray(an.lazy_test_error), np.asarray(an.test_error), rtol=1e-7
    )
    assert float(jnp.max(an.residual_error)) < 1e-7


def test_needs_three_times():
    _, _, record = mlp_run()
    short = type(record)(
        ts=record.ts[:2], params=None, residuals=record.residuals[:2], kernels=record.kernels[:2],
        kernel_derivatives=record.kernel_derivatives[:2], eigenvalues=record.eigenvalues[:2],
        y_train=record.y_train, test_predictions=None, test_kernels=None, y_test=None,
        output_scale=1.0, method=TrainingMethod.CUSTOM,
    )
    with pytest.raises(ValueError, match="3 saved times"):
        analyze_training(short)


@pytest.mark.slow  # ~20-40 s; CI time budget (make test-all runs it)
def test_lazy_rich_quick_table_is_monotone(tmp_path):
    """Larger α: smaller ‖dM/dt‖/‖M‖ and smaller flux relative to dissipation (≥ 4 α)."""
    import json
    import pathlib

    from spectral_jax.experiments import lazy_rich
    from spectral_jax.sweep import ResultStore, load_sweep_config, run_sweep

    preset = pathlib.Path(lazy_rich.__file__).parent / "presets" / "lazy_rich.quick.toml"
    runs = load_sweep_config(preset).configurations(lazy_rich.SWEEP)
    outcome = run_sweep(lazy_rich.SWEEP, runs, ResultStore(tmp_path / "store"), progress=False)
    result = lazy_rich.report(outcome.records, tmp_path)
    rows = result["table"]
    assert len(rows) >= 4 and [r["alpha"] for r in rows] == sorted(r["alpha"] for r in rows)
    for key in ("kernel_velocity_max", "flux_to_dissipation", "kernel_change"):
        values = np.array([r[key] for r in rows])
        assert np.all(np.diff(values) < 0), (key, values)
        assert result["power_law_slope_in_alpha"][key] < -0.5
    assert max(r["kato_residual_error_max"] for r in rows) <= 1e-4
    saved = json.loads((tmp_path / "lazy_rich.json").read_text())
    assert saved["all_monotone"] is True and (tmp_path / "lazy_rich.png").stat().st_size > 0
