"""Resolution-limited exponents and double descent at p = n (docs/theory.md §2.6, §2.7).

Small configurations of `experiments/resolution_limits.py` and `experiments/double_descent.py`.
"""

import numpy as np

from spectral_jax.experiments import double_descent, resolution_limits


def test_data_and_width_exponents_match_formula(tmp_path):
    config = resolution_limits.Config(
        alpha=1.5, beta=2.0, dimension=2048, sizes=(16, 32, 64, 128, 256), seeds=4
    )
    result = resolution_limits.run(config, tmp_path)
    for row in result["exponents"]:
        # Decay exponents: loss ∝ r^(-p) with p = β - 1 = 1 > 0.
        assert row["formula"] == 1.0 and row["measured_ci95"][0] < row["measured"]
        assert abs(row["measured"] - row["formula"]) < 0.15, row
        assert abs(row["shell_tail_fit"] - row["formula"]) < 0.1, row
    assert (tmp_path / "resolution_limits.json").exists()
    assert (tmp_path / "resolution_limits.png").exists()


def test_min_norm_interpolant_is_gradient_flow_limit():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(20, 50))
    y = rng.normal(size=20)
    a_inf, _ = double_descent.fit_random_features(z, y, np.inf, 0.0)
    np.testing.assert_allclose(a_inf, np.linalg.pinv(z) @ y, rtol=1e-8, atol=1e-10)
    a_t, _ = double_descent.fit_random_features(z, y, 1e9, 0.0)
    np.testing.assert_allclose(a_t, a_inf, rtol=1e-6, atol=1e-8)
    ridge = 0.1
    a_ridge, _ = double_descent.fit_random_features(z, y, np.inf, ridge)
    direct = z.T @ np.linalg.solve(z @ z.T + 20 * ridge * np.eye(20), y)
    np.testing.assert_allclose(a_ridge, direct, rtol=1e-10)


def test_peak_at_interpolation_threshold_removed_by_early_stopping(tmp_path):
    config = double_descent.Config(
        dimension=400, n=40, widths=(10, 20, 30, 36, 40, 44, 60, 120, 320), seeds=4
    )
    result = double_descent.run(config, tmp_path)
    assert result["peak_width"]["ridgeless"] == 40
    assert result["peak_over_far_ratio"] > 10
    smallest = np.asarray(result["smallest_nonzero_eigenvalue_median"])
    assert np.argmin(smallest) == config.widths.index(40)
    early = np.asarray(result["test_loss_median"][f"early stop t={config.early_stop_time:g}"])
    ridgeless = np.asarray(result["test_loss_median"]["ridgeless"])
    at_n = config.widths.index(40)
    assert early[at_n] < 0.1 * ridgeless[at_n]
    assert ridgeless[at_n] > 2 * max(ridgeless[at_n - 1], ridgeless[at_n + 1])
    # No peak left at p = n: at most a mild bump over the neighbouring widths.
    assert early[at_n] <= 1.5 * max(early[at_n - 1], early[at_n + 1])


def test_interpolating_solution_weight_piles_into_bottom_shells(tmp_path):
    config = double_descent.Config(dimension=400, n=40, widths=(20, 40, 80), seeds=1)
    result = double_descent.run(config, tmp_path)
    by_shell = {int(p): np.asarray(w) for p, w in result["ridgeless_norm_by_shell"].items()}
    assert set(by_shell) == {20, 40, 80}
    # At p = n the bottom occupied shell carries most of the norm; away from it, it does not.
    at_n = by_shell[40]
    assert at_n[np.nonzero(at_n)[0].max()] > 0.5 * at_n.sum()
    for p in (20, 80):
        w = by_shell[p]
        assert w[np.nonzero(w)[0].max()] < 0.5 * w.sum()
    assert at_n.sum() > 10 * max(by_shell[20].sum(), by_shell[80].sum())
