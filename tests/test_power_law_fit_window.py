"""`fit_power_law` options: bootstrap intervals and fitting windows (explicit or the plateau of
the local log-log slope), and that without them the fit is what it always was."""

import json

import numpy as np
import pytest

from spectral_jax.renorm import (
    Bootstrap,
    CIMethod,
    PlateauWindow,
    fit_power_law,
    local_slopes,
    plateau_window,
)


def _noisy_power_law(seed: int, n: int = 40, sigma: float = 0.1):
    """y = 2 x^-1.5 with multiplicative lognormal noise (Gaussian in log y)."""
    x = np.logspace(0, 3, n)
    rng = np.random.default_rng(seed)
    return x, 2.0 * x**-1.5 * np.exp(sigma * rng.normal(size=n))


def _bent_curve():
    """A power law x^-1 with a pre-asymptotic bend (30/x) and a far-end floor (1e-6)."""
    x = np.logspace(0, 6, 61)
    return x, x**-1 * (1 + 30 / x) + 1e-6


# --- unchanged default behaviour ---------------------------------------------------------------


def test_default_fit_is_the_plain_log_log_least_squares():
    x, y = _noisy_power_law(seed=3, n=20)
    fit = fit_power_law(x, y)
    (slope, intercept), cov = np.polyfit(np.log(x), np.log(y), 1, cov=True)
    stderr = np.sqrt(cov[0, 0])  # polyfit scales by the residual variance over n - 2
    half = 2.101 * stderr  # two-sided 95% Student-t quantile, 18 degrees of freedom
    assert fit.exponent == pytest.approx(-slope, rel=1e-12)
    assert fit.prefactor == pytest.approx(np.exp(intercept), rel=1e-10)
    assert fit.stderr == pytest.approx(stderr, rel=1e-10)
    assert fit.ci_low == pytest.approx(-slope - half, rel=1e-10)
    assert fit.ci_high == pytest.approx(-slope + half, rel=1e-10)
    assert fit.ci_method is CIMethod.STUDENT_T
    assert (fit.x_low, fit.x_high, fit.num_points) == (x.min(), x.max(), x.size)
    # The same with window=None, bootstrap=None spelled out.
    assert fit_power_law(x, y, window=None, bootstrap=None) == fit
    # JSON-friendly, the method as its string value.
    d = json.loads(json.dumps(fit.as_dict()))
    assert d["ci_method"] == "student_t" and d["x_high"] == pytest.approx(1000.0)


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_interval_covers_truth_and_is_close_to_student_t():
    x, y = _noisy_power_law(seed=5)
    t_fit = fit_power_law(x, y)
    b_fit = fit_power_law(x, y, bootstrap=Bootstrap())
    assert b_fit.ci_method is CIMethod.BOOTSTRAP
    assert b_fit.ci_low <= 1.5 <= b_fit.ci_high
    # Point estimate, stderr and window are the least-squares ones either way.
    assert (b_fit.exponent, b_fit.stderr, b_fit.x_low) == (t_fit.exponent, t_fit.stderr, 1.0)
    assert b_fit.ci_low < b_fit.exponent < b_fit.ci_high
    ratio = (b_fit.ci_high - b_fit.ci_low) / (t_fit.ci_high - t_fit.ci_low)
    assert 0.5 < ratio < 2.0, ratio
    assert json.loads(json.dumps(b_fit.as_dict()))["ci_method"] == "bootstrap"


def test_bootstrap_coverage_is_about_the_level():
    # Gaussian log-noise: the percentile interval should cover the truth about 90% of the time.
    hits, trials = 0, 200
    for seed in range(trials):
        x, y = _noisy_power_law(seed=100 + seed, n=30)
        fit = fit_power_law(x, y, bootstrap=Bootstrap(num_samples=400, level=0.9, seed=seed))
        hits += fit.ci_low <= 1.5 <= fit.ci_high
    assert 0.82 <= hits / trials <= 0.97, hits / trials


def test_bootstrap_is_deterministic_per_seed():
    x, y = _noisy_power_law(seed=5)
    a = fit_power_law(x, y, bootstrap=Bootstrap(seed=7))
    b = fit_power_law(x, y, bootstrap=Bootstrap(seed=7))
    c = fit_power_law(x, y, bootstrap=Bootstrap(seed=8))
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    # A wider level gives a wider interval from the same resamples.
    wide = fit_power_law(x, y, bootstrap=Bootstrap(seed=7, level=0.99))
    assert wide.ci_low < a.ci_low and wide.ci_high > a.ci_high


def test_bootstrap_resamples_only_points_of_positive_weight():
    x, y = _noisy_power_law(seed=2, n=12)
    y[[3, 8]] *= 50.0  # outliers, switched off by zero weights
    w = np.ones_like(x)
    w[[3, 8]] = 0.0
    kept = w > 0
    opts = Bootstrap(num_samples=500, seed=4)
    weighted = fit_power_law(x, y, weights=w, bootstrap=opts)
    dropped = fit_power_law(x[kept], y[kept], bootstrap=opts)
    assert weighted.ci_low == pytest.approx(dropped.ci_low, rel=1e-12)
    assert weighted.ci_high == pytest.approx(dropped.ci_high, rel=1e-12)


def test_bootstrap_with_three_points_redraws_flat_resamples():
    # With 3 points, 1 resample in 9 repeats a single x: those are redrawn, not fitted (NaN).
    x = np.array([1.0, 2.0, 4.0])
    fit = fit_power_law(x, x**-1.0 * np.array([1.0, 1.1, 0.95]), bootstrap=Bootstrap())
    assert np.isfinite(fit.ci_low) and np.isfinite(fit.ci_high)
    assert fit.ci_low <= fit.exponent <= fit.ci_high


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_samples": 99}, "num_samples must be >= 100"),
        ({"num_samples": 500.0}, "num_samples must be an integer"),
        ({"level": 0.0}, "level must lie strictly between 0 and 1"),
        ({"level": 1.0}, "level must lie strictly between 0 and 1"),
        ({"level": float("nan")}, "level must lie strictly between 0 and 1"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_bad_bootstrap_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Bootstrap(**kwargs)


# --- windows -----------------------------------------------------------------------------------


def test_local_slopes_are_decay_exponents():
    x = np.sort(np.random.default_rng(0).uniform(1.0, 100.0, size=15))  # uneven grid
    np.testing.assert_allclose(local_slopes(x, 3.0 * x**-0.75), 0.75, atol=1e-10)
    np.testing.assert_allclose(local_slopes(x, x**2), -2.0, atol=1e-10)
    with pytest.raises(ValueError, match="strictly increasing"):
        local_slopes(x[::-1], x[::-1] ** -1.0)


def test_plateau_window_finds_the_asymptote_of_a_bent_curve():
    x, y = _bent_curve()
    lo, hi = plateau_window(x, y)
    fit = fit_power_law(x, y, window=PlateauWindow())
    assert (fit.x_low, fit.x_high) == (lo, hi)
    # Inside the true power-law range: at x = 100 the bend is a 30% correction, at x = 2e5 the
    # floor is 20% of y; and the window spans at least two decades.
    assert 100.0 <= lo and hi <= 2e5 and hi / lo >= 100.0
    assert fit.exponent == pytest.approx(1.0, abs=0.02)
    assert fit.num_points == np.sum((x >= lo) & (x <= hi))
    assert abs(fit_power_law(x, y).exponent - 1.0) > 0.05  # the all-points fit is biased
    # x order does not matter to fit_power_law.
    perm = np.random.default_rng(1).permutation(x.size)
    shuffled = fit_power_law(x[perm], y[perm], window=PlateauWindow())
    assert (shuffled.x_low, shuffled.x_high) == (lo, hi)
    assert shuffled.exponent == pytest.approx(fit.exponent, rel=1e-12)


def test_plateau_ties_go_to_larger_x():
    # ln y piecewise linear in ln x: exponent 1 on points 0..9, 3 on points 11..20 (point 10,
    # the kink, has central slope 2). Two flat runs of 10 points: the one at larger x wins.
    x = np.logspace(0, 2, 21)
    lx = np.log(x)
    y = np.exp(np.where(lx <= lx[10], -lx, -lx[10] - 3.0 * (lx - lx[10])))
    np.testing.assert_allclose(local_slopes(x, y)[[0, 9, 10, 11, 20]], [1, 1, 2, 3, 3])
    assert plateau_window(x, y) == (x[11], x[20])
    assert fit_power_law(x, y, window=PlateauWindow()).exponent == pytest.approx(3.0)
    # min_points longer than either run: the tolerance then decides.
    with pytest.raises(ValueError, match="no 11 consecutive points"):
        plateau_window(x, y, PlateauWindow(min_points=11))
    assert plateau_window(x, y, PlateauWindow(min_points=11, tolerance=2.0)) == (x[0], x[20])


def test_no_plateau_is_a_clear_error():
    x = np.linspace(1.0, 20.0, 20)
    y = np.exp(-x)  # local slope = x: never flat
    with pytest.raises(ValueError, match=r"no 4 consecutive points .*within 0\.1 ") as e:
        fit_power_law(x, y, window=PlateauWindow())
    message = str(e.value)
    assert "no power-law plateau" in message and "local slopes seen (from 1" in message
    assert "19.496]" in message  # the slopes themselves, to the last


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"min_points": 2}, "min_points must be an integer >= 3"),
     ({"tolerance": 0.0}, "tolerance must be positive and finite"),
     ({"tolerance": float("inf")}, "tolerance must be positive and finite")],
)
def test_bad_plateau_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PlateauWindow(**kwargs)


def test_explicit_window_and_weights_compose():
    x, y = _noisy_power_law(seed=9)
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=x.size)
    sel = (x >= 10.0) & (x <= 300.0)
    fit = fit_power_law(x, y, weights=w, window=(10.0, 300.0))
    ref = fit_power_law(x[sel], y[sel], weights=w[sel])
    assert fit == ref
    assert (fit.x_low, fit.x_high) == (x[sel].min(), x[sel].max())
    assert fit.num_points == sel.sum() < x.size
    # Differently weighted (all-ones) in the same window: a different estimate.
    assert fit_power_law(x, y, window=(10.0, 300.0)).exponent != fit.exponent
    # Zero weights at the window's edges: x_low/x_high are the points actually fitted.
    w0 = np.where(x == x[sel].min(), 0.0, 1.0)
    assert fit_power_law(x, y, weights=w0, window=(10.0, 300.0)).x_low == x[sel][1]
    # A window with bootstrap resamples the window only.
    opts = Bootstrap(num_samples=300, seed=1)
    boot = fit_power_law(x, y, weights=w, window=(10.0, 300.0), bootstrap=opts)
    assert boot.confidence_interval == fit_power_law(
        x[sel], y[sel], weights=w[sel], bootstrap=opts).confidence_interval


def test_bad_explicit_windows():
    x, y = _noisy_power_law(seed=9)
    with pytest.raises(ValueError, match=r"need at least 3 points in the window \[10, 12\], got"):
        fit_power_law(x, y, window=(10.0, 12.0))
    with pytest.raises(ValueError, match="x_low <= x_high"):
        fit_power_law(x, y, window=(300.0, 10.0))
    with pytest.raises(ValueError, match="positive weight in the window"):
        fit_power_law(x, y, weights=(x < 10.0).astype(float), window=(10.0, 300.0))
    with pytest.raises(TypeError, match="window must be None"):
        fit_power_law(x, y, window=10.0)
