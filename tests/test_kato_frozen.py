"""The frozen fast path `solve_frozen`: the Kato solution of a constant operator in closed form.

Oracles: `solve_kato` (same fields, same conventions), `scipy.linalg.expm` (the ambient flow at
times the stepping path cannot reach cheaply), reducing the full outputs by hand (`reduce=`),
the jaxpr (one `eigh`, on the (n, n) matrix, not one per time). float64 comes from
tests/conftest.py, as for every test module.
"""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import spectral_jax as sj
from spectral_jax.modes import frozen
from spectral_jax.modes.frozen import solve_frozen


def _psd_with_spectrum(rng, lam):
    q = np.linalg.qr(rng.normal(size=(len(lam), len(lam))))[0]
    m = (q * lam[None, :]) @ q.T
    return 0.5 * (m + m.T)


def _hadamard_operator(lam):
    """M = H diag(λ) Hᵀ / 8 with H the ±1 Hadamard matrix: exact in float64 for dyadic λ."""
    h2 = np.array([[1.0, 1.0], [1.0, -1.0]])
    h8 = np.kron(np.kron(h2, h2), h2)
    return (h8 * lam[None, :]) @ h8.T / 8


# ---------------------------------------------------------------------------------------------
# Against solve_kato and the ambient flow


@pytest.mark.slow  # compile-bound, moved out of CI's 15-minute budget
def test_matches_solve_kato_on_power_law():
    rng = np.random.default_rng(31)
    n = 20
    lam = np.arange(1, n + 1, dtype=np.float64) ** -1.5
    op = sj.FrozenOperator(jnp.asarray(_psd_with_spectrum(rng, lam)))
    e0 = jnp.asarray(rng.normal(size=n))
    ts = jnp.linspace(0.0, 8.0, 5)
    fast = solve_frozen(op, e0, ts)
    kato = sj.solve_kato(op, e0, ts, rtol=1e-11, atol=1e-13)
    assert fast.succeeded and kato.succeeded

    scale = float(jnp.linalg.norm(e0))
    for name in ("coefficients", "residuals", "frames"):
        got, want = np.asarray(getattr(fast, name)), np.asarray(getattr(kato, name))
        assert got.shape == want.shape and got.dtype == want.dtype, name
        assert np.max(np.abs(got - want)) <= 1e-9 * (scale if name != "frames" else 1.0), name
    np.testing.assert_allclose(fast.eigenvalues, kato.eigenvalues, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fast.eigenvalues, np.broadcast_to(lam, (5, n)), rtol=1e-12)
    for name in ("generator", "eigenvalue_rates", "relative_gaps", "min_gap"):
        got, want = np.asarray(getattr(fast, name)), np.asarray(getattr(kato, name))
        assert got.shape == want.shape and got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)
    for name in ("order", "min_gap_index", "self_check_mode"):
        got, want = np.asarray(getattr(fast, name)), np.asarray(getattr(kato, name))
        assert got.shape == want.shape and got.dtype == want.dtype, name
    np.testing.assert_array_equal(fast.order, kato.order)
    np.testing.assert_array_equal(fast.min_gap_index, kato.min_gap_index)
    np.testing.assert_array_equal(fast.ts, ts)
    # Coefficients at ts[0] are Vᵀ e0; no second integration is claimed.
    np.testing.assert_allclose(fast.frames[0] @ fast.coefficients[0], e0, atol=1e-13)
    assert fast.reference_coefficients is None and fast.reduced_reference is None
    assert fast.self_check_mismatch.shape == (5,)
    assert 0.0 <= float(fast.self_check_mismatch.max()) <= fast.self_check_tolerance
    assert fast.stats == {
        "num_steps": 0,
        "num_accepted_steps": 0,
        "num_rejected_steps": 0,
        "rhs_evaluations": 0,
        "eigh_calls": 1,
    }
    assert fast.result == diffrax.RESULTS.successful and fast.error is None


def test_zero_mode_and_degenerate_pair_at_long_times():
    # ‖M‖ is kept small: at time t any method is only as good as t·eps·‖M‖ (the zero mode's
    # computed eigenvalue is round-off of that size), which at t = 1e6 must stay below 1e-10.
    lam = 2.0**-4 * np.array([1.0, 0.5, 0.25, 0.25, 0.125, 2.0**-6, 2.0**-10, 0.0])
    m = _hadamard_operator(lam)
    e0 = np.random.default_rng(32).normal(size=8)
    ts = np.array([0.0, 1.0, 1e2, 1e4, 1e5, 1e6])  # λ_max·t = 6e4: ~1e4 Tsit5 steps at least
    sol = solve_frozen(sj.FrozenOperator(jnp.asarray(m)), jnp.asarray(e0), jnp.asarray(ts))
    assert sol.succeeded
    np.testing.assert_allclose(sol.eigenvalues[0], lam, atol=1e-15)
    for i, t in enumerate(ts):
        exact = scipy.linalg.expm(-m * t) @ e0
        err = np.linalg.norm(np.asarray(sol.residuals[i]) - exact) / np.linalg.norm(e0)
        assert err <= 1e-10, (t, err)
    c = np.asarray(sol.coefficients)
    # The zero mode does not move; the degenerate pair decays as one (any basis of it is exact).
    np.testing.assert_allclose(c[:, 7], c[0, 7], rtol=1e-9)
    pair = c[:, 2] ** 2 + c[:, 3] ** 2
    np.testing.assert_allclose(pair, pair[0] * np.exp(-2 * lam[2] * ts), rtol=1e-12, atol=1e-300)
    assert {(k, j) for _, k, j, _ in sol.degenerate_pairs} == {(2, 3)}


# ---------------------------------------------------------------------------------------------
# reduce=, the single eigh, the self-check, bad input


def test_reduce_matches_reducing_the_full_outputs():
    rng = np.random.default_rng(33)
    lam = np.array([2.0, 1.0, 1.0, 0.3, 0.0])
    op = sj.FrozenOperator(jnp.asarray(_psd_with_spectrum(rng, lam)))
    e0, ts = jnp.asarray(rng.normal(size=5)), jnp.linspace(0.0, 3.0, 7)

    def reduce(eigenvalues, coefficients, generator):
        return {
            "energy": eigenvalues * coefficients**2,
            "coupling": jnp.sum(generator * coefficients[None, :], axis=1),
            "spectrum": eigenvalues,
        }

    full = solve_frozen(op, e0, ts)
    reduced = solve_frozen(op, e0, ts, reduce=reduce)
    expected = jax.vmap(reduce)(full.eigenvalues, full.coefficients, full.generator)
    assert reduced.generator is None and reduced.frames is None
    assert reduced.reduced_reference is None and full.reduced is None
    for key, value in expected.items():
        assert reduced.reduced[key].shape == value.shape == (7, 5), key
        np.testing.assert_allclose(reduced.reduced[key], value, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(reduced.coefficients, full.coefficients)


def _eigh_operand_shapes(jaxpr) -> list[tuple[int, ...]]:
    """Operand shape of every `eigh` in a jaxpr, nested jaxprs (jit, cond, ...) included."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "eigh":
            shapes.append(tuple(eqn.invars[0].aval.shape))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                sub = getattr(sub, "jaxpr", sub)
                if hasattr(sub, "eqns"):
                    shapes += _eigh_operand_shapes(sub)
    return shapes


def test_exactly_one_eigh_of_the_matrix():
    n, num_times = 6, 9
    m = jnp.diag(jnp.arange(1.0, n + 1.0))
    e0, ts = jnp.ones(n), jnp.linspace(0.0, 1.0, num_times)
    # The counter can fail: it sees two eigh, and a per-time (vmapped) one by its shape.
    per_time = jax.make_jaxpr(jax.vmap(jnp.linalg.eigh))(jnp.broadcast_to(m, (num_times, n, n)))
    assert _eigh_operand_shapes(per_time.jaxpr) == [(num_times, n, n)]
    twice = jax.make_jaxpr(lambda x: jnp.linalg.eigh(x)[0] + jnp.linalg.eigh(2 * x)[0])(m)
    assert len(_eigh_operand_shapes(twice.jaxpr)) == 2

    for reduce in (None, lambda lam, c, w: c**2):
        core = jax.make_jaxpr(lambda m, e, t: frozen._solve_frozen(m, e, t, reduce))(m, e0, ts)
        assert _eigh_operand_shapes(core.jaxpr) == [(n, n)]


def test_garbled_decomposition_raises_self_check_error(monkeypatch):
    def wrong_eigh(matrix):  # eigenvalues of the wrong modes: a broken decomposition
        lam, vec = jnp.linalg.eigh(matrix)
        return lam, vec[:, ::-1]

    monkeypatch.setattr(frozen, "eigh_descending", wrong_eigh)
    op = sj.FrozenOperator(jnp.diag(jnp.array([3.0, 2.0, 1.0])))
    # A fresh `reduce` is a new static argument: the jitted core is traced again, with the patch.
    with pytest.raises(sj.SelfCheckError, match=r"\|\|M V - V Lambda\|\|_F / \|\|M\|\|_F = "):
        solve_frozen(op, jnp.ones(3), jnp.linspace(0.0, 1.0, 3), reduce=lambda lam, c, w: c)


def test_float32_keeps_the_dtype():
    op = sj.FrozenOperator(jnp.diag(jnp.array([1.0, 0.5, 0.0], jnp.float32)))
    sol = solve_frozen(op, jnp.ones(3, jnp.float32), jnp.linspace(0.0, 2.0, 4, dtype=jnp.float32))
    for name in ("eigenvalues", "coefficients", "residuals", "frames", "self_check_mismatch"):
        assert getattr(sol, name).dtype == jnp.float32, name
    assert sol.self_check_tolerance == pytest.approx(1000 * 3 * np.finfo(np.float32).eps)
    np.testing.assert_allclose(
        sol.residuals[-1], np.exp(-2.0 * np.array([1.0, 0.5, 0.0])), rtol=1e-6
    )


def test_bad_input_is_named():
    op = sj.FrozenOperator(jnp.diag(jnp.array([2.0, 1.0])))
    ts = jnp.linspace(0.0, 1.0, 3)
    with pytest.raises(ValueError, match=r"e0 must have shape \(2,\)"):
        solve_frozen(op, jnp.ones(3), ts)
    with pytest.raises(TypeError, match="dtype mix"):
        solve_frozen(op, jnp.ones(2, jnp.float32), ts)
    with pytest.raises(ValueError, match="strictly increasing"):
        solve_frozen(op, jnp.ones(2), jnp.array([0.0, 1.0, 1.0]))
    nan = jnp.array([[1.0, jnp.nan], [jnp.nan, 1.0]])
    with pytest.raises(ValueError, match="contains NaN or Inf"):
        sj.FrozenOperator(nan)
    # Past the constructor (a pytree edit), the solver's own check still names it.
    with pytest.raises(ValueError, match=r"M\(t=0\) contains NaN or Inf"):
        solve_frozen(eqx.tree_at(lambda o: o.matrix, op, nan), jnp.ones(2), ts)
    moving = sj.CallableOperator(lambda t: jnp.diag(jnp.array([2.0, 1.0])) * (1 + t))
    with pytest.raises(TypeError, match="FrozenOperator"):
        solve_frozen(moving, jnp.ones(2), ts)
    with pytest.raises(TypeError, match="clusters"):
        solve_frozen(op, jnp.ones(2), ts, clusters=1e-7)
