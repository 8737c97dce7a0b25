"""`fit_power_law`: the decay-exponent convention, its interval, and clear errors."""

import numpy as np
import pytest
import scipy.stats

import spectral_jax as sj


def test_exact_power_law_recovered():
    x = np.logspace(0, 4, 30)
    fit = sj.fit_power_law(x, 3.0 * x**-0.75)
    assert fit.exponent == pytest.approx(0.75, abs=1e-12)  # decay exponent: y ∝ x^-0.75
    assert fit.prefactor == pytest.approx(3.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0)
    np.testing.assert_allclose(fit(x), 3.0 * x**-0.75, rtol=1e-12)
    growing = sj.fit_power_law(x, x**2)
    assert growing.exponent == pytest.approx(-2.0, abs=1e-12)
    assert growing.ci_low <= growing.exponent <= growing.ci_high


def test_matches_scipy_linregress_and_interval(rng):
    x = np.logspace(0, 3, 25)
    y = 2.0 * x**0.4 * np.exp(0.05 * rng.normal(size=x.size))
    fit = sj.fit_power_law(x, y)
    ref = scipy.stats.linregress(np.log(x), np.log(y))
    assert fit.exponent == pytest.approx(-ref.slope, rel=1e-12)
    assert np.log(fit.prefactor) == pytest.approx(ref.intercept, rel=1e-10)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-10)
    half = scipy.stats.t.ppf(0.975, x.size - 2) * ref.stderr
    assert fit.ci_high - fit.exponent == pytest.approx(half, rel=1e-3)
    assert fit.exponent - fit.ci_low == pytest.approx(half, rel=1e-3)


def test_weights_match_repeated_points(rng):
    # Integer weights are the same fit as repeating the points.
    x = np.logspace(0, 2, 8)
    y = x**-0.5 * np.exp(0.1 * rng.normal(size=x.size))
    w = np.array([1, 2, 1, 3, 1, 1, 2, 1], dtype=float)
    fit = sj.fit_power_law(x, y, weights=w)
    rep = sj.fit_power_law(np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int)))
    assert fit.exponent == pytest.approx(rep.exponent, rel=1e-12)
    assert fit.prefactor == pytest.approx(rep.prefactor, rel=1e-12)
    # Zero weights drop points.
    w0 = np.array([1, 1, 1, 0, 1, 1, 0, 1], dtype=float)
    kept = w0 > 0
    assert sj.fit_power_law(x, y, weights=w0).exponent == pytest.approx(
        sj.fit_power_law(x[kept], y[kept]).exponent, rel=1e-12)


def test_interval_covers_truth_about_95_percent():
    rng = np.random.default_rng(1)
    x = np.logspace(0, 2, 12)
    hits = 0
    trials = 400
    for _ in range(trials):
        y = x**-1.2 * np.exp(0.1 * rng.normal(size=x.size))
        fit = sj.fit_power_law(x, y)
        hits += fit.ci_low <= 1.2 <= fit.ci_high
    assert 0.91 <= hits / trials <= 0.99


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.ones(5), np.ones(4), "one length"),
        (np.ones(2), np.ones(2), "at least 3"),
        (np.array([1.0, 2.0, -3.0]), np.ones(3), "positive"),
        (np.array([1.0, 2.0, np.nan]), np.ones(3), "x must be finite"),
        (np.array([1.0, 2.0, 0.0]), np.ones(3), "x must be positive"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 2.0]), "y must be positive"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0]), "y must be positive"),
        (np.array([1.0, 2.0, 3.0]), np.array([1.0, np.inf, 2.0]), "y must be finite"),
        (np.full(5, 2.0), np.arange(1.0, 6.0), "x is constant"),
        (np.ones((3, 2)), np.ones((3, 2)), "1-D"),
    ],
)
def test_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        sj.fit_power_law(x, y)


X5 = np.array([1.0, 2.0, 4.0, 8.0, 16.0])


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.array([1.0, np.nan, 1.0, 1.0, 1.0]), "weights must be finite"),
        (np.array([1.0, 1.0, -1.0, 1.0, 1.0]), "weights must be >= 0"),
        (np.ones(4), r"weights must have shape \(5,\)"),
        (np.zeros(5), "at least 3 points of positive weight"),
        (np.array([1.0, 1.0, 0.0, 0.0, 0.0]), "at least 3 points of positive weight"),
        (np.array([1.0, 1.0, 1.0, 0.0, 0.0]), None),
    ],
)
def test_bad_weights(weights, match):
    y = X5**-1.0
    if match is None:  # three positive weights are enough
        assert sj.fit_power_law(X5, y, weights=weights).exponent == pytest.approx(1.0)
        return
    with pytest.raises(ValueError, match=match):
        sj.fit_power_law(X5, y, weights=weights)


def test_constant_x_over_weighted_points():
    x = np.array([2.0, 2.0, 2.0, 5.0])
    with pytest.raises(ValueError, match="constant"):
        sj.fit_power_law(x, np.arange(1.0, 5.0), weights=np.array([1.0, 1.0, 1.0, 0.0]))
