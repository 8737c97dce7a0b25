"""Bad input raises eagerly, before tracing, naming the problem (docs/theory.md §5)."""

import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj

N = 4


def _psd(n=N, seed=0):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(n, n))
    return jnp.asarray(b @ b.T / n + 0.1 * np.eye(n))


def _good():
    return sj.FrozenOperator(_psd()), jnp.ones(N), jnp.linspace(0.0, 1.0, 3)


SOLVERS = pytest.mark.parametrize("solve", [sj.solve_kato, sj.solve_direct], ids=["kato", "direct"])


# --- the operator: shape, symmetry, finiteness, sign ------------------------------------------


def test_non_square_matrix():
    with pytest.raises(ValueError, match=r"square \(n, n\).*\(3, 4\)"):
        sj.FrozenOperator(jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"fn\(t\) must be a square"):
        sj.CallableOperator(lambda t: jnp.zeros((3, 4)) * t)
    with pytest.raises(ValueError, match=r"fn\(t\) must be a square"):
        sj.CallableOperator(lambda t: jnp.zeros(3) * t)
    with pytest.raises(ValueError, match="square"):
        sj.InterpolatedOperator(jnp.linspace(0.0, 1.0, 3), jnp.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="generator must be a square"):
        sj.RotatingPowerLaw(jnp.ones(3), jnp.zeros((3, 2)))


def test_non_symmetric_matrix():
    m = np.array(_psd())
    m[0, 1] += 1e-3
    with pytest.raises(ValueError, match=r"M is not symmetric: max \|M - M\^T\|"):
        sj.FrozenOperator(jnp.asarray(m))
    with pytest.raises(ValueError, match=r"matrices\[1\] is not symmetric"):
        sj.InterpolatedOperator(
            jnp.linspace(0.0, 1.0, 3), jnp.stack([_psd(), jnp.asarray(m), _psd()])
        )


@SOLVERS
def test_non_symmetric_callable_operator_caught_by_solver(solve):
    skew = jnp.zeros((N, N)).at[0, 1].set(1.0)
    op = sj.CallableOperator(lambda t: _psd() + t * skew)  # symmetric at t=0, not at t=1
    with pytest.raises(ValueError, match=r"M\(t=1\) is not symmetric"):
        solve(op, jnp.ones(N), jnp.linspace(0.0, 1.0, 3))


def test_symmetric_to_round_off_is_accepted():
    m = np.array(_psd())
    m[0, 1] += 1e-16  # below n·eps·‖M‖: round-off, not asymmetry
    sj.FrozenOperator(jnp.asarray(m))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_in_matrix(bad):
    m = np.array(_psd())
    m[1, 1] = bad
    with pytest.raises(ValueError, match="M contains NaN or Inf"):
        sj.FrozenOperator(jnp.asarray(m))


@SOLVERS
def test_nan_in_callable_operator_caught_by_solver(solve):
    op = sj.CallableOperator(lambda t: _psd() * jnp.sqrt(1.0 - t))  # NaN for t > 1
    with pytest.raises(ValueError, match=r"M\(t=2\) contains NaN or Inf"):
        solve(op, jnp.ones(N), jnp.asarray([0.0, 2.0]))


def test_nan_inf_in_other_inputs():
    op, e0, ts = _good()
    with pytest.raises(ValueError, match="e0 contains NaN or Inf"):
        sj.solve_kato(op, e0.at[0].set(jnp.nan), ts)
    with pytest.raises(ValueError, match="ts contains NaN or Inf"):
        sj.solve_direct(op, e0, ts.at[1].set(jnp.inf))
    with pytest.raises(ValueError, match="NaN or Inf"):
        sj.RotatingPowerLaw(jnp.asarray([1.0, jnp.nan]), jnp.zeros((2, 2)))


def test_negative_eigenvalue_beyond_round_off():
    with pytest.raises(
        ValueError, match=r"M has a negative eigenvalue -1\.000e-01 beyond round-off"
    ):
        sj.FrozenOperator(jnp.diag(jnp.asarray([1.0, 0.5, -0.1])))
    with pytest.raises(ValueError, match="negative eigenvalue"):
        sj.RotatingPowerLaw(jnp.asarray([1.0, -0.5]), jnp.zeros((2, 2)))
    # A PSD matrix with a zero eigenvalue computed with round-off is accepted.
    rng = np.random.default_rng(3)
    q = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    m = (q * np.array([2.0, 1.0, 0.5, 1e-3, 0.0])[None, :]) @ q.T
    m = 0.5 * (m + m.T)
    assert np.linalg.eigvalsh(m).min() < 1e-15  # may be slightly negative
    sj.FrozenOperator(jnp.asarray(m))


@SOLVERS
def test_negative_definite_callable_operator_caught_by_solver(solve):
    op = sj.CallableOperator(lambda t: _psd() - 3.0 * t * jnp.eye(N))  # indefinite at t=1
    with pytest.raises(ValueError, match=r"M\(t=1\) has a negative eigenvalue"):
        solve(op, jnp.ones(N), jnp.linspace(0.0, 1.0, 3))


def test_generator_not_antisymmetric():
    with pytest.raises(ValueError, match=r"antisymmetric \(A = -A\^T\)"):
        sj.RotatingPowerLaw(jnp.ones(3), jnp.ones((3, 3)))


# --- the times ----------------------------------------------------------------------------------


@SOLVERS
@pytest.mark.parametrize(
    "ts", [[0.0, 1.0, 0.5], [0.0, 1.0, 1.0], [2.0, 1.0]], ids=["decreasing", "repeated", "reversed"]
)
def test_ts_not_strictly_increasing(solve, ts):
    op, e0, _ = _good()
    with pytest.raises(ValueError, match=r"ts must be strictly increasing; ts\[\d\]="):
        solve(op, e0, jnp.asarray(ts))


@SOLVERS
def test_ts_wrong_rank_or_empty(solve):
    op, e0, _ = _good()
    with pytest.raises(ValueError, match=r"ts must be 1-D, got shape \(2, 2\)"):
        solve(op, e0, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="ts must hold at least one time"):
        solve(op, e0, jnp.zeros((0,)))


def test_interpolated_operator_times():
    ms = jnp.stack([_psd()] * 3)
    with pytest.raises(ValueError, match="InterpolatedOperator: ts must be strictly increasing"):
        sj.InterpolatedOperator(jnp.asarray([0.0, 2.0, 1.0]), ms)
    with pytest.raises(ValueError, match=r"needs ts \(T,\) and matrices \(T, n, n\)"):
        sj.InterpolatedOperator(jnp.asarray([0.0, 1.0]), ms)
    with pytest.raises(ValueError, match="spline.*at least 3 times"):
        sj.InterpolatedOperator(jnp.asarray([0.0, 1.0]), ms[:2])
    with pytest.raises(ValueError, match="derivatives shape"):
        sj.InterpolatedOperator(jnp.asarray([0.0, 1.0, 2.0]), ms, derivatives=ms[:2])


# --- the residual: length, dtype ----------------------------------------------------------------


@SOLVERS
@pytest.mark.parametrize(
    "e0", [np.ones(N + 1), np.ones(N - 1), np.ones((N, 1))], ids=["long", "short", "2d"]
)
def test_e0_wrong_shape(solve, e0):
    op, _, ts = _good()
    with pytest.raises(ValueError, match=rf"e0 must have shape \({N},\) to match the operator"):
        solve(op, jnp.asarray(e0), ts)


@SOLVERS
def test_dtype_mix_e0_float32_operator_float64(solve):
    op, e0, ts = _good()
    assert op.dtype == np.float64
    with pytest.raises(TypeError, match="dtype mix: e0 is float32 but the operator is float64"):
        solve(op, e0.astype(jnp.float32), ts)


@SOLVERS
def test_dtype_mix_e0_float64_operator_float32(solve):
    op32 = sj.FrozenOperator(_psd().astype(jnp.float32))
    with pytest.raises(TypeError, match="dtype mix: e0 is float64 but the operator is float32"):
        solve(op32, jnp.ones(N), jnp.linspace(0.0, 1.0, 3))


def test_e0_not_floating():
    op, _, ts = _good()
    with pytest.raises(TypeError, match="e0 must be floating point, got int"):
        sj.solve_kato(op, jnp.ones(N, dtype=jnp.int32), ts)


def test_dtype_mix_in_operator_construction():
    with pytest.raises(
        TypeError, match=r"eigenvalues \(float32\) and generator \(float64\) must share one dtype"
    ):
        sj.RotatingPowerLaw(jnp.ones(2, jnp.float32), jnp.zeros((2, 2), jnp.float64))
    with pytest.raises(TypeError, match="CallableOperator needs a callable"):
        sj.CallableOperator(_psd())


# --- shells configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [1.0, 0.5, -2.0, np.inf, np.nan])
def test_log_shells_ratio_must_exceed_one(ratio):
    with pytest.raises(ValueError, match="LogShells: ratio must be finite and > 1"):
        sj.LogShells(1.0, ratio, 4)


@pytest.mark.parametrize("count", [0, -1, 2.5, True])
def test_log_shells_count_must_be_positive_integer(count):
    with pytest.raises(ValueError, match="LogShells: count must be an integer >= 1"):
        sj.LogShells(1.0, 2.0, count)


@pytest.mark.parametrize("lam_ref", [0.0, -1.0, np.inf])
def test_log_shells_reference_must_be_positive(lam_ref):
    with pytest.raises(ValueError, match="LogShells: lam_ref must be finite and > 0"):
        sj.LogShells(lam_ref, 2.0, 4)


def test_good_input_passes_validation():
    # The same helpers with valid input construct without error (the checks are not vacuous).
    op, e0, ts = _good()
    shells = sj.LogShells(1.0, 2.0, 3)
    assert shells.num_shells == 5
    assert op.shape == (N, N)
    sj.RotatingPowerLaw(jnp.asarray([1.0, 0.5]), jnp.asarray([[0.0, 1.0], [-1.0, 0.0]]))
    sj.InterpolatedOperator(jnp.linspace(0.0, 1.0, 3), jnp.stack([_psd()] * 3))
