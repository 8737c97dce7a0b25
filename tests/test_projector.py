"""Gauge-free projector form of the shell budget (docs/theory.md §2.3).

Oracles: central finite differences of the projectors $P_s(t)$ themselves (gauge-free, smooth
while no eigenvalue crosses an edge: unlike eigenvectors they have a well-defined
derivative through degeneracies); literal matrix products $e^TP_se$, $2e^TP_sMe$,
$e^T\\dot P_se$; and the closed form of `RotatingPowerLaw` with exactly degenerate eigenvalues.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ROTATING_N as N, rotating_case

import spectral_jax as sj
from spectral_jax.shells.projector import projector_budget, projector_budget_along, shell_projectors


def _degenerate_operator(seed=3):
    """Smooth M(t) = Q(t) diag(λ(t)) Q(t)^T with an exactly degenerate triple inside a shell."""
    n = 7
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    a = jnp.asarray(0.3 * (a - a.T))
    b = rng.normal(size=(n, n))
    b = jnp.asarray(0.2 * (b - b.T))
    lam0 = jnp.asarray([1.6, 0.7, 0.7, 0.7, 0.3, 0.1, 0.1])  # shells (b=2, λ_ref=2): 1,2,2,2,3,5,5

    @jax.jit
    def fn(t):
        s = t * a + t**2 * b
        eye = jnp.eye(n, dtype=s.dtype)
        q = jnp.linalg.solve(eye - s, eye + s)  # Cayley transform: orthogonal
        lam = lam0 * (1.0 + 0.05 * jnp.sin(t))  # degeneracies persist, no edge crossed
        return (q * lam[None, :]) @ q.T

    return sj.CallableOperator(fn), n


def test_projector_derivative_matches_finite_difference():
    op, n = _degenerate_operator()
    shells = sj.LogShells(2.0, 2.0, 4)
    t, h = 0.37, 1e-5
    p_plus, _ = shell_projectors(shells, op(t + h), op.derivative(t + h))
    p_minus, _ = shell_projectors(shells, op(t - h), op.derivative(t - h))
    p, p_dot = shell_projectors(shells, op(t), op.derivative(t))
    fd = (p_plus - p_minus) / (2 * h)
    assert np.all(np.isfinite(np.asarray(p_dot)))
    np.testing.assert_allclose(p_dot, fd, atol=1e-8)
    # projectors: idempotent, complete, symmetric
    np.testing.assert_allclose(jnp.einsum("sij,sjk->sik", p, p), p, atol=1e-13)
    np.testing.assert_allclose(p.sum(axis=0), np.eye(n), atol=1e-13)
    assert float(jnp.max(jnp.abs(p_dot.sum(axis=0)))) < 1e-12  # Σ_s P_s = I ⇒ Σ_s Ṗ_s = 0


def test_budget_equals_literal_projector_products(rng):
    op, n = _degenerate_operator()
    shells = sj.LogShells(2.0, 2.0, 4)
    t = 0.8
    m, dm = op.value_and_derivative(t)
    e = jnp.asarray(rng.normal(size=n))
    p, p_dot = shell_projectors(shells, m, dm)
    b = projector_budget(shells, m, dm, e)
    np.testing.assert_allclose(b.energy, jnp.einsum("i,sij,j->s", e, p, e), atol=1e-13)
    np.testing.assert_allclose(
        b.dissipation, 2 * jnp.einsum("i,sij,jk,k->s", e, p, m, e), atol=1e-13
    )
    np.testing.assert_allclose(b.net_transfer, jnp.einsum("i,sij,j->s", e, p_dot, e), atol=1e-12)
    assert np.all(np.isfinite(np.asarray(b.transfer)))
    assert float(jnp.max(jnp.abs(jnp.diagonal(b.transfer)))) == 0.0
    # dE_s/dt from a central difference of e(t+s)^T P_s(t+s) e(t+s) along de/dt = -M e.
    # e(t+s) is taken to first order only: the dropped s² term is even in s and cancels.
    h = 1e-5

    def energy_at(s):
        e_s = e - s * (m @ e)
        p_s = shell_projectors(shells, op(t + s), op.derivative(t + s))[0]
        return jnp.einsum("i,sij,j->s", e_s, p_s, e_s)

    fd = (energy_at(h) - energy_at(-h)) / (2 * h)
    np.testing.assert_allclose(b.rate, fd, atol=1e-8)


def test_gauge_and_basis_invariance(rng):
    """Same physics in a rotated ambient basis: M' = Q M Q^T, e' = Q e."""
    op, n = _degenerate_operator()
    shells = sj.LogShells(2.0, 2.0, 4)
    m, dm = op.value_and_derivative(1.1)
    e = jnp.asarray(rng.normal(size=n))
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    q = jnp.asarray(q)
    b = projector_budget(shells, m, dm, e)
    b2 = projector_budget(shells, q @ m @ q.T, q @ dm @ q.T, q @ e)
    for x, y in [(b.energy, b2.energy), (b.dissipation, b2.dissipation),
                 (b.transfer, b2.transfer), (b.flux, b2.flux)]:
        np.testing.assert_allclose(x, y, atol=1e-12)


def test_agrees_with_modewise_generic(rng):
    n = 9
    shells = sj.LogShells(1.5, 2.0, 6)
    x = rng.normal(size=(n, n))
    m = jnp.asarray(x @ x.T / n)
    y = rng.normal(size=(n, n))
    dm = jnp.asarray(y + y.T)
    e = jnp.asarray(rng.normal(size=n))
    state = jax.jit(sj.spectral_state)(m, dm)
    c = state.frame.T @ e
    modewise = sj.shell_budget(shells, state.eigenvalues, c, state.generator)
    projector = projector_budget(shells, m, dm, e)
    scale = float(jnp.max(jnp.abs(modewise.transfer)))
    np.testing.assert_allclose(projector.transfer, modewise.transfer, atol=1e-12 * scale)
    np.testing.assert_allclose(projector.energy, modewise.energy, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(projector.rate, modewise.rate, atol=1e-12 * scale)


def test_shape_errors():
    shells = sj.LogShells(1.0, 2.0, 3)
    with pytest.raises(ValueError, match="projector_budget"):
        projector_budget(shells, jnp.eye(3), jnp.eye(3), jnp.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        projector_budget(shells, jnp.eye(3), jnp.eye(3, dtype=jnp.float32), jnp.ones(3))


@pytest.mark.parametrize("split", [pytest.param(0.0, marks=pytest.mark.slow), 1e-13])
def test_degenerate_modes_inside_a_shell_along_kato(split):
    """Exact (split=0) and near (1e-13) degeneracies: every shell quantity finite and exact.

    Closed form: c(t) = expm(-(Λ+A)t) c0 in the rotating frame, so
    $dE_s/dt = 2\\sum_{k\\in s} c_k\\dot c_k$ with $\\dot c = -(\\Lambda + A)c$.
    """
    lam = np.geomspace(1.7, 0.004, N)
    lam[2] = lam[3] = lam[4] = 0.6  # one shell (λ_ref = 2, b = 2: (0.5, 1])
    lam[3] += split
    lam[7] = lam[8] = 0.01
    op, c0, ts, sol, exact_c, exact_dc = rotating_case(lam, seed=1)
    shells = sj.LogShells(2.0, 2.0, 8)
    member = shells.membership(op.eigenvalues)
    exact_energy = exact_c**2 @ member
    exact_rate = (2.0 * exact_c * exact_dc) @ member
    total = float(jnp.sum(c0**2))

    projector = projector_budget_along(shells, op, sol.ts, sol.residuals)
    modewise = sj.shell_budget(shells, sol.eigenvalues, sol.coefficients, sol.generator)
    for b in (projector, modewise):
        for x in (b.energy, b.dissipation, b.transfer, b.flux):
            assert np.all(np.isfinite(np.asarray(x)))
        assert float(jnp.max(jnp.abs(b.energy - exact_energy))) <= 1e-8 * total
        assert float(jnp.max(jnp.abs(b.rate - exact_rate))) <= 1e-8 * total
    scale = float(jnp.max(jnp.abs(projector.transfer)))
    np.testing.assert_allclose(modewise.transfer, projector.transfer, atol=1e-9 * scale)
    # only inter-shell gaps enter the projector form: its transfer stays O(|A| |c|²)
    assert scale < 10.0 * total
