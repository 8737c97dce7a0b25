import numpy as np
import pytest
import scipy.stats

import spectral_jax as sj


def test_exact_power_law_recovered():
    x = np.logspace(0, 4, 30)
    fit = sj.fit_power_law(x, 3.0 * x**-0.75)
    assert fit.exponent == pytest.approx(-0.75, abs=1e-12)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-12)
    assert fit.r2 == pytest.approx(1.0)
    np.testing.assert_allclose(fit(x), 3.0 * x**-0.75, rtol=1e-12)


def test_matches_scipy_linregress_and_interval(rng):
    x = np.logspace(0, 3, 25)
    y = 2.0 * x**0.4 * np.exp(0.05 * rng.normal(size=x.size))
    fit = sj.fit_power_law(x, y)
    ref = scipy.stats.linregress(np.log(x), np.log(y))
    assert fit.exponent == pytest.approx(ref.slope, rel=1e-12)
    assert np.log(fit.prefactor) == pytest.approx(ref.intercept, rel=1e-10)
    assert fit.stderr == pytest.approx(ref.stderr, rel=1e-10)
    half = scipy.stats.t.ppf(0.975, x.size - 2) * ref.stderr
    assert fit.ci_high - fit.exponent == pytest.approx(half, rel=1e-3)


def test_interval_covers_truth_about_95_percent():
    rng = np.random.default_rng(1)
    x = np.logspace(0, 2, 12)
    hits = 0
    trials = 400
    for _ in range(trials):
        y = x**-1.2 * np.exp(0.1 * rng.normal(size=x.size))
        fit = sj.fit_power_law(x, y)
        hits += fit.ci_low <= -1.2 <= fit.ci_high
    assert 0.91 <= hits / trials <= 0.99


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.ones(5), np.ones(4), "one length"),
        (np.ones(2), np.ones(2), "at least 3"),
        (np.array([1.0, 2.0, -3.0]), np.ones(3), "positive"),
        (np.array([1.0, 2.0, np.nan]), np.ones(3), "finite"),
    ],
)
def test_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        sj.fit_power_law(x, y)
