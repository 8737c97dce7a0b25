"""`InterpolatedOperator` input checks: each bad input is named, with its index."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj


def _knots(t_count=4, n=3, seed=0):
    rng = np.random.default_rng(seed)
    ts = np.linspace(0.0, 1.0, t_count)
    mats, ders = [], []
    for _ in range(t_count):
        a = rng.normal(size=(n, n))
        mats.append(a @ a.T + np.eye(n))
        b = rng.normal(size=(n, n))
        ders.append(b + b.T)
    return ts, np.stack(mats), np.stack(ders)


def test_valid_input_builds_both_interpolants():
    ts, mats, ders = _knots()
    for op in (sj.InterpolatedOperator(ts, mats, ders), sj.InterpolatedOperator(ts, mats)):
        np.testing.assert_allclose(op(ts[2]), mats[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_ts_is_named(bad):
    ts, mats, ders = _knots()
    ts[2] = bad
    with pytest.raises(ValueError, match=r"ts\[2\] = .* is not finite"):
        sj.InterpolatedOperator(ts, mats, ders)


def test_non_increasing_ts_is_named():
    ts, mats, _ = _knots()
    ts[2] = ts[1]
    with pytest.raises(ValueError, match=r"strictly increasing; ts\[1\]"):
        sj.InterpolatedOperator(ts, mats)


def test_bad_matrices_are_named_with_their_index():
    ts, mats, ders = _knots()
    nan = mats.copy()
    nan[3, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"matrices\[3\] contains NaN"):
        sj.InterpolatedOperator(ts, nan, ders)
    asym = mats.copy()
    asym[1, 0, 2] += 0.1
    with pytest.raises(ValueError, match=r"matrices\[1\] is not symmetric"):
        sj.InterpolatedOperator(ts, asym, ders)


def test_bad_derivatives_are_named_with_their_index():
    ts, mats, ders = _knots()
    nan = ders.copy()
    nan[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"derivatives\[1\] contains NaN"):
        sj.InterpolatedOperator(ts, mats, nan)
    asym = ders.copy()
    asym[2, 0, 1] += 1e-3
    with pytest.raises(ValueError, match=r"derivatives\[2\] is not symmetric"):
        sj.InterpolatedOperator(ts, mats, asym)
    # derivatives need not be PSD: an indefinite symmetric slope is fine
    indefinite = np.broadcast_to(np.diag([1.0, -1.0, 0.0]), ders.shape)
    sj.InterpolatedOperator(ts, mats, indefinite)


def test_shapes_and_counts():
    ts, mats, ders = _knots()
    with pytest.raises(ValueError, match=r"derivatives shape \(4, 3, 2\)"):
        sj.InterpolatedOperator(ts, mats, ders[..., :2])
    with pytest.raises(ValueError, match=r"ts \(T,\) and matrices \(T, n, n\)"):
        sj.InterpolatedOperator(ts[:3], mats)
    with pytest.raises(ValueError, match="spline interpolant needs at least 3 times"):
        sj.InterpolatedOperator(ts[:2], mats[:2])
    with pytest.raises(ValueError, match="square"):
        sj.InterpolatedOperator(ts, mats[:, :, :2])
    with pytest.raises(TypeError, match="floating"):
        sj.InterpolatedOperator(ts, mats.astype(np.int64))


def test_checks_are_skipped_under_tracing():
    ts, mats, ders = _knots()

    @jax.jit
    def build_and_eval(m):
        return sj.InterpolatedOperator(jnp.asarray(ts), m, jnp.asarray(ders))(0.3)

    np.testing.assert_allclose(
        build_and_eval(jnp.asarray(mats)), sj.InterpolatedOperator(ts, mats, ders)(0.3),
        rtol=1e-14,
    )
