"""Exactness where real spectra live: dense tails, clusters, avoided crossings, zero modes.

Oracles are independent of the Kato machinery: `scipy.integrate.solve_ivp(method="DOP853")` at
rtol 1e-13 on de/dt = −M(t)e, and the closed form of the rotating power law
(`expm(tA) expm(−(Λ+A)t) c0`). Every case must agree to 1e-7, relative to ‖e(t)‖.

The operators (`spectral_jax.operators.adversarial`) are equinox modules with array fields, so
cases of one shape share a compile.
"""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.stats
from helpers import dop853_residuals, rel_err as _rel_err

import spectral_jax as sj
from spectral_jax.operators import (
    AvoidedCrossings,
    BreathingRBF,
    LowRankFeatures,
    SplittingCluster,
)

KATO_TOL = dict(rtol=1e-11, atol=1e-14)
REQUIRED = 1e-7


@pytest.mark.parametrize(
    "g",
    # The two ends of the range in CI; the middle in `make test-all` (each is a compilation).
    [1e-4, *(pytest.param(g, marks=pytest.mark.slow) for g in (1e-6, 1e-8, 1e-9, 1e-10)), 1e-12],
)
def test_avoided_crossing_3d_matchesdop853_residuals(g):
    u = scipy.stats.ortho_group.rvs(3, random_state=1)
    op = AvoidedCrossings(jnp.asarray(u), jnp.array([1.0]), jnp.array([g]), jnp.array([0.5]))
    e0, ts = np.array([1.0, 0.7, -0.4]), np.linspace(0.0, 2.0, 21)
    kato = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), **KATO_TOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, dop853_residuals(op, e0, ts)) < REQUIRED


@pytest.mark.parametrize(
    "g",
    [pytest.param(g, marks=pytest.mark.slow) for g in (1e-9, 1e-5, 1e-12)],  # compile-bound
)
def test_two_avoided_crossings_in_eight_dimensions(g):
    """Two pairs crossing at different times (one of them at a saved time), four spectators."""
    u = scipy.stats.ortho_group.rvs(8, random_state=2)
    op = AvoidedCrossings(
        jnp.asarray(u),
        jnp.array([0.7, 1.0]),
        jnp.array([g, 10 * g]),
        jnp.array([0.9, 0.5, 0.2, 0.05]),
    )
    e0, ts = np.random.default_rng(3).normal(size=8), np.linspace(0.0, 2.0, 21)
    kato = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), **KATO_TOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, dop853_residuals(op, e0, ts)) < REQUIRED
    # The independent shell energies agree with the Kato ones (same basis, same shells).
    shells = sj.LogShells(lam_ref=5.5, ratio=2.0, count=6)
    kato_e = sj.shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator).energy
    ref_e = sj.shell_budget(
        shells, kato.eigenvalues, kato.reference_coefficients, kato.generator
    ).energy
    np.testing.assert_allclose(kato_e, ref_e, rtol=0, atol=REQUIRED * float(np.sum(e0**2)))


def _rotating_tail_case(n, alpha, t_end=2.0):
    lam = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    a = np.asarray(sj.banded_generator(n, bandwidth=2, coupling=0.1, seed=0))
    c0 = np.random.default_rng(0).normal(size=n)
    ts = np.linspace(0.0, t_end, 9)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), jnp.asarray(a))
    exact = np.stack(
        [scipy.linalg.expm(a * t) @ scipy.linalg.expm(-(np.diag(lam) + a) * t) @ c0 for t in ts]
    )
    return op, c0, ts, exact


@pytest.mark.parametrize(
    "n, alpha, relative_gap",
    [
        (48, 4.0, 1e-7),
        pytest.param(200, 2.0, 1e-6, marks=pytest.mark.slow),
        pytest.param(200, 4.0, 1e-7, marks=pytest.mark.slow),
    ],
)
def test_dense_power_law_tail_matches_closed_form(n, alpha, relative_gap):
    """λ_k = k^−α: adjacent gaps below the cluster threshold, chains of them (not transitive
    pairwise: the ends of a chain are far apart), the tail one long cluster."""
    op, c0, ts, exact = _rotating_tail_case(n, alpha)
    lam = np.asarray(op.eigenvalues)
    gaps = -np.diff(lam) / lam[0]
    assert np.sum(gaps < relative_gap) >= 10  # the adversarial premise: chains of clusters
    clusters = sj.Clusters(relative_gap=relative_gap)
    kato = sj.solve_kato(op, jnp.asarray(c0), jnp.asarray(ts), clusters=clusters, **KATO_TOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, exact) < REQUIRED
    # Shell energies against the closed-form coefficients (exactly the eigenbasis coefficients,
    # since M(t) = R diag(λ) Rᵀ with R = expm(tA): c = Rᵀ e).
    shells = sj.LogShells(lam_ref=1.3, ratio=4.0, count=8)
    kato_e = sj.shell_budget(shells, kato.eigenvalues, kato.coefficients, kato.generator).energy
    exact_c = np.stack(
        [scipy.linalg.expm(-(np.diag(lam) + np.asarray(op.generator)) * t) @ c0 for t in ts]
    )
    exact_e = sj.shell_budget(
        shells,
        jnp.broadcast_to(jnp.asarray(lam), exact_c.shape),
        jnp.asarray(exact_c),
        kato.generator,
    ).energy
    np.testing.assert_allclose(kato_e, exact_e, rtol=0, atol=REQUIRED * float(np.sum(c0**2)))


@pytest.mark.parametrize("p", [25, pytest.param(40, marks=pytest.mark.slow)])
def test_exact_zero_modes_matchdop853_residuals(p):
    """Width p < n: n − p exact zero eigenvalues form one large cluster the whole run."""
    rng = np.random.default_rng(1)
    n = 40
    z0, z1 = rng.normal(size=(n, p)), 0.3 * rng.normal(size=(n, p))
    op = LowRankFeatures(jnp.asarray(z0), jnp.asarray(z1))
    e0, ts = rng.normal(size=n), np.linspace(0.0, 3.0, 7)
    kato = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), **KATO_TOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, dop853_residuals(op, e0, ts)) < REQUIRED
    if p < n:  # the zero modes keep their energy: no dissipation, no transport into them
        zero = np.asarray(kato.eigenvalues)[-1] < 1e-10
        assert zero.sum() == n - p


def test_cluster_that_forms_and_splits_matchesdop853_residuals():
    n = 7
    base = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.1])
    spread = np.array([0.0, 0.8, 0.3, -0.2, -0.6, 0.0, 0.0])  # the four middle ones meet at t=1
    a = np.asarray(sj.banded_generator(n, bandwidth=2, coupling=0.3, seed=4))
    op = SplittingCluster(jnp.asarray(a), jnp.asarray(base), jnp.asarray(spread))
    e0, ts = np.random.default_rng(5).normal(size=n), np.linspace(0.0, 2.0, 11)  # t = 1 saved
    kato = sj.solve_kato(op, jnp.asarray(e0), jnp.asarray(ts), **KATO_TOL)
    assert kato.succeeded
    assert _rel_err(kato.residuals, dop853_residuals(op, e0, ts)) < REQUIRED
    assert any(abs(t - 1.0) < 1e-12 for t, *_ in kato.degenerate_pairs)


@pytest.mark.parametrize(
    "relative_gap, t_end",
    [(1e-4, 9.0), pytest.param(None, 30.0, marks=pytest.mark.slow)],  # default: ~12k steps
)
def test_rbf_kernel_with_moving_length_scale(relative_gap, t_end):
    """A case that was 30% off at t = 30 with a large cluster threshold: any threshold is exact.

    The Gaussian kernel's spectrum decays faster than any power: a dense cloud of tiny,
    nearly degenerate eigenvalues whose eigenvectors rotate as the length scale breathes.
    """
    rng = np.random.default_rng(6)
    op = BreathingRBF(jnp.asarray(rng.normal(size=(40, 2))))
    e0, ts = rng.normal(size=40), np.linspace(0.0, t_end, 7)
    kato = sj.solve_kato(
        op,
        jnp.asarray(e0),
        jnp.asarray(ts),
        clusters=sj.Clusters(relative_gap=relative_gap),
        **KATO_TOL,
    )
    assert kato.succeeded
    assert _rel_err(kato.residuals, dop853_residuals(op, e0, ts)) < REQUIRED
