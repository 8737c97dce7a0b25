"""Resolution-limited exponents and double descent at p = n (docs/theory.md §2.6, §2.7).

Small sweeps of `spectral_jax/experiments/resolution_limits.py` and `double_descent.py`, run
through the sweep engine and reported from the stored records.
"""

import numpy as np
import pytest

from spectral_jax.experiments import double_descent, resolution_limits
from spectral_jax.sweep import ResultStore, parse_sweep_config, run_sweep


def _sweep_and_report(module, tmp_path, fixed, grid):
    config = parse_sweep_config({"sweep": module.NAME, "fixed": fixed, "grid": grid})
    outcome = run_sweep(module.SWEEP, config.configurations(module.SWEEP),
                        ResultStore(tmp_path / module.NAME), progress=False)
    assert outcome.failed == 0
    return module.report(outcome.records, tmp_path)


@pytest.mark.slow  # 30 s, ten compilations; `make run` measures the same at the quick preset
def test_data_and_width_exponents_match_formula(tmp_path):
    result = _sweep_and_report(
        resolution_limits, tmp_path, {"alpha": 1.5, "beta": 2.0, "dimension": 2048},
        {"resolution": ["data_size", "width"], "size": [16, 32, 64, 128, 256],
         "seed": [0, 1, 2, 3]},
    )
    assert [row["predicted"] for row in result["exponents"]] == [1.0, 1.0]
    for row in result["table"]:
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
    widths = [10, 20, 30, 36, 40, 44, 60, 120, 320]
    result = _sweep_and_report(double_descent, tmp_path,
                               {"dimension": 400, "n": 40, "max_width": 320},
                               {"width": widths, "seed": [0, 1, 2, 3]})
    assert result["peak_width"]["ridgeless"] == 40
    assert result["peak_over_far_ratio"] > 10
    smallest = np.asarray(result["smallest_nonzero_eigenvalue_median"])
    assert np.argmin(smallest) == widths.index(40)
    early = np.asarray(result["test_loss_median"]["early stop t=100"])
    ridgeless = np.asarray(result["test_loss_median"]["ridgeless"])
    at_n = widths.index(40)
    assert early[at_n] < 0.1 * ridgeless[at_n]
    assert ridgeless[at_n] > 2 * max(ridgeless[at_n - 1], ridgeless[at_n + 1])
    # No peak left at p = n: at most a mild bump over the neighbouring widths.
    assert early[at_n] <= 1.5 * max(early[at_n - 1], early[at_n + 1])


def test_interpolating_solution_weight_piles_into_bottom_shells(tmp_path):
    # Six seeds: which single shell holds the most weight varies from draw to draw (one seed
    # put 3% of the p = n norm in its bottom shell, another 93%); the median does not.
    outcome = run_sweep(
        double_descent.SWEEP,
        parse_sweep_config({"sweep": "double_descent",
                            "fixed": {"dimension": 400, "n": 40, "max_width": 80},
                            "grid": {"width": [20, 40, 80], "seed": [0, 1, 2, 3, 4, 5]}},
                           ).configurations(double_descent.SWEEP),
        ResultStore(tmp_path), progress=False,
    )
    weights = {}
    for r in outcome.records:
        weights.setdefault(r.config["width"], []).append(r.outputs["shell_weights"])
    norm = {p: np.median([w.sum() for w in ws]) for p, ws in weights.items()}
    assert norm[40] > 10 * max(norm[20], norm[80])  # the norm blows up at p = n
    # ... because the spectrum reaches deeper shells there: the bottom occupied shell sits
    # below those of p = n/2 and p = 2n, and the shells below theirs carry most of the norm.
    bottom = {p: np.median([np.nonzero(w)[0].max() for w in ws]) for p, ws in weights.items()}
    assert bottom[40] > max(bottom[20], bottom[80])
    deeper = int(max(bottom[20], bottom[80]))
    share = np.median([w[deeper + 1:].sum() / w.sum() for w in weights[40]])
    assert share > 0.5, share
