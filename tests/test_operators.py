"""Operators: values and derivatives against closed forms, SciPy and finite differences;
interpolation against its expected convergence order (a fitted log–log slope)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import spectral_jax as sj


def _antisymmetric(rng, n, scale=1.0):
    b = rng.normal(size=(n, n)) * scale
    return b - b.T


@pytest.fixture(scope="module")
def rotating():
    rng = np.random.default_rng(0)
    n = 5
    lam = np.array([2.0, 1.0, 0.6, 0.3, 0.05])
    a = _antisymmetric(rng, n, 0.5)
    return sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a)), lam, a


# --- CallableOperator / FrozenOperator ----------------------------------------------------------


def test_callable_operator_derivative_by_forward_mode():
    rng = np.random.default_rng(1)
    s0, s1, s2 = (jnp.asarray(rng.normal(size=(4, 4))) for _ in range(3))
    s0, s1, s2 = s0 + s0.T, s1 + s1.T, s2 + s2.T
    op = sj.CallableOperator(lambda t: s0 + t * s1 + t**2 * s2 + jnp.sin(t) * s1 @ s1)
    assert op.dtype == np.float64 and op.shape == (4, 4)
    t = 0.7
    m, dm = op.value_and_derivative(t)
    np.testing.assert_allclose(m, s0 + t * s1 + t**2 * s2 + np.sin(t) * s1 @ s1, rtol=1e-14)
    np.testing.assert_allclose(dm, s1 + 2 * t * s2 + np.cos(t) * s1 @ s1, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(op.derivative(t), dm, rtol=0)
    np.testing.assert_allclose(op(t), m, rtol=0)


def test_callable_operator_dtype():
    m = jnp.eye(3, dtype=jnp.float32)
    op = sj.CallableOperator(lambda t: m * jnp.asarray(t, m.dtype))
    assert op.dtype == np.float32
    assert op(1.0).dtype == jnp.float32 and op.derivative(1.0).dtype == jnp.float32
    op64 = sj.CallableOperator(lambda t: jnp.eye(3) * t, dtype=jnp.float64)
    assert op64(1.0).dtype == jnp.float64


def test_frozen_operator():
    m = jnp.asarray([[2.0, 0.5], [0.5, 1.0]])
    op = sj.FrozenOperator(m)
    np.testing.assert_array_equal(op(3.0), m)
    value, deriv = op.value_and_derivative(3.0)
    np.testing.assert_array_equal(value, m)
    np.testing.assert_array_equal(deriv, np.zeros((2, 2)))
    assert op.shape == (2, 2) and op.dtype == np.float64


# --- RotatingPowerLaw -----------------------------------------------------------------------------


def test_rotating_power_law_matches_scipy(rotating):
    op, lam, a = rotating
    for t in (0.0, 0.3, 7.5, 50.0):
        r = scipy.linalg.expm(a * t)
        np.testing.assert_allclose(op.rotation(t), r, atol=1e-12)
        np.testing.assert_allclose(op(t), r @ np.diag(lam) @ r.T, atol=1e-12)
        rr = np.asarray(op.rotation(t))
        np.testing.assert_allclose(rr.T @ rr, np.eye(len(lam)), atol=1e-13)


def test_rotating_power_law_derivative(rotating):
    op, lam, a = rotating
    t = 1.3
    m, dm = op.value_and_derivative(t)
    # Closed form against forward-mode AD of op(t) and against a central difference.
    _, dm_ad = jax.jvp(op.__call__, (jnp.asarray(t),), (jnp.asarray(1.0),))
    np.testing.assert_allclose(dm, dm_ad, atol=1e-12)
    h = 1e-5
    fd = (np.asarray(op(t + h)) - np.asarray(op(t - h))) / (2 * h)
    np.testing.assert_allclose(dm, fd, atol=1e-8)
    r = scipy.linalg.expm(a * t)
    np.testing.assert_allclose(dm, r @ (a @ np.diag(lam) - np.diag(lam) @ a) @ r.T, atol=1e-12)


def test_rotating_exact_coefficients(rotating):
    op, lam, a = rotating
    c0 = np.arange(1.0, 6.0)
    for t in (0.0, 2.0):
        np.testing.assert_allclose(
            op.exact_coefficients(t, jnp.asarray(c0)),
            scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0,
            rtol=1e-12,
        )


def test_operators_are_pytrees_under_jit_and_vmap(rotating):
    op = rotating[0]
    ts = jnp.linspace(0.0, 1.0, 4)
    batched = jax.jit(jax.vmap(lambda o, t: o(t), in_axes=(None, 0)))(op, ts)
    for i, t in enumerate(ts):
        np.testing.assert_allclose(batched[i], op(t), atol=1e-14)
    # An operator can be a vmapped argument too: two generators at once (each constructed, so
    # that its cached spectral decomposition matches its generator).
    doubled = sj.RotatingPowerLaw(op.eigenvalues, 2 * op.generator)
    ops = jax.tree_util.tree_map(lambda x, y: jnp.stack([x, y]), op, doubled)
    two = eqx.filter_vmap(lambda o: o(0.5))(ops)
    np.testing.assert_allclose(two[0], op(0.5), atol=1e-14)
    np.testing.assert_allclose(two[1], doubled(0.5), atol=1e-12)
    # Constructed under vmap (a sweep over generator scales) works as well.
    scales = jnp.asarray([1.0, 2.0])
    swept = jax.vmap(lambda c: sj.RotatingPowerLaw(op.eigenvalues, c * op.generator)(0.5))(scales)
    np.testing.assert_allclose(swept, two, atol=1e-12)


def test_rotating_float32(rotating):
    op64, lam, a = rotating
    op32 = sj.RotatingPowerLaw(jnp.asarray(lam, jnp.float32), jnp.asarray(a, jnp.float32))
    assert op32.dtype == np.float32 and op32(1.0).dtype == jnp.float32
    np.testing.assert_allclose(op32(1.0), op64(1.0), atol=5e-6)


# --- InterpolatedOperator: reproduction, smoothness, convergence order ----------------------------


@eqx.filter_jit
def _evaluate(op, ts):
    return jax.vmap(op.value_and_derivative)(ts)


def _interpolation_errors(truth, knots_counts, *, hermite, lo=0.0, hi=2.0, window=(0.0, 2.0)):
    """Max errors of value and derivative over a dense grid inside `window`, per knot count."""
    dense = jnp.linspace(window[0], window[1], 301)
    m_true, dm_true = _evaluate(truth, dense)
    hs, err_m, err_dm = [], [], []
    for count in knots_counts:
        knots = jnp.linspace(lo, hi, count)
        ms, dms = _evaluate(truth, knots)
        interp = sj.InterpolatedOperator(knots, ms, dms if hermite else None)
        m, dm = _evaluate(interp, dense)
        hs.append(float(knots[1] - knots[0]))
        err_m.append(float(jnp.max(jnp.abs(m - m_true))))
        err_dm.append(float(jnp.max(jnp.abs(dm - dm_true))))
    return np.array(hs), np.array(err_m), np.array(err_dm)


COUNTS = (6, 11, 21, 41, 81)


def test_hermite_convergence_order(rotating):
    hs, err_m, err_dm = _interpolation_errors(rotating[0], COUNTS, hermite=True)
    # err ∝ h^order = (1/h)^-order: the decay exponent in 1/h is the order.
    fit_m, fit_dm = sj.fit_power_law(1 / hs, err_m), sj.fit_power_law(1 / hs, err_dm)
    assert 3.7 <= fit_m.exponent <= 4.3, fit_m
    assert 2.7 <= fit_dm.exponent <= 3.3, fit_dm
    assert err_m[-1] < 1e-7


@pytest.mark.slow  # compile-bound, moved out of CI's 15-minute budget
def test_spline_convergence_order(rotating):
    # Interior: fourth order (the natural end condition's O(h²) error decays away from the
    # ends geometrically, by ~0.27 per knot, so the coarsest grid is left out).
    hs, err_m, err_dm = _interpolation_errors(
        rotating[0], COUNTS[1:], hermite=False, window=(0.75, 1.25)
    )
    # err ∝ h^order = (1/h)^-order: the decay exponent in 1/h is the order.
    fit_m, fit_dm = sj.fit_power_law(1 / hs, err_m), sj.fit_power_law(1 / hs, err_dm)
    assert 3.7 <= fit_m.exponent <= 4.3, fit_m
    assert 2.7 <= fit_dm.exponent <= 3.5, fit_dm
    # Whole interval: at least second order (natural spline: M'' = 0 at the ends).
    hs, err_m, _ = _interpolation_errors(rotating[0], COUNTS, hermite=False)
    assert sj.fit_power_law(1 / hs, err_m).exponent >= 1.8


@pytest.mark.parametrize("hermite", [True, False], ids=["hermite", "spline"])
def test_interpolation_reproduces_knots_and_is_c1(rotating, hermite):
    truth = rotating[0]
    knots = jnp.linspace(0.0, 2.0, 7)
    ms, dms = _evaluate(truth, knots)
    interp = sj.InterpolatedOperator(knots, ms, dms if hermite else None)
    assert interp.shape == (5, 5) and interp.dtype == np.float64
    for i, t in enumerate(knots):
        np.testing.assert_allclose(interp(t), ms[i], atol=1e-13)
    if hermite:
        np.testing.assert_allclose(jax.vmap(interp.derivative)(knots), dms, atol=1e-12)
    # C¹: one-sided derivatives agree at the interior knots.
    eps = 1e-9
    for t in knots[1:-1]:
        left, right = interp.derivative(t - eps), interp.derivative(t + eps)
        np.testing.assert_allclose(left, right, atol=1e-6)
    # Symmetric in between.
    mid = interp(0.55)
    np.testing.assert_allclose(mid, np.asarray(mid).T, atol=1e-14)


def test_interpolation_reproduces_cubic_exactly():
    """A cubic in t is reproduced exactly by Hermite (with exact slopes)."""
    rng = np.random.default_rng(9)
    s = [jnp.asarray(0.1 * (x + x.T)) for x in rng.normal(size=(4, 3, 3))]
    s[0] = s[0] + 3.0 * jnp.eye(3)  # positive definite on [0, 1]

    def m(t):
        return s[0] + t * s[1] + t**2 * s[2] + t**3 * s[3]

    truth = sj.CallableOperator(m)
    knots = jnp.linspace(0.0, 1.0, 4)
    ms, dms = jax.vmap(truth.value_and_derivative)(knots)
    interp = sj.InterpolatedOperator(knots, ms, dms)
    for t in (0.1, 0.5, 0.93):
        np.testing.assert_allclose(interp(t), m(t), atol=1e-12)
        np.testing.assert_allclose(interp.derivative(t), truth.derivative(t), atol=1e-11)
