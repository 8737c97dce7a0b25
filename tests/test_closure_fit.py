"""Closure fits: exact and noisy recovery, the planted transport family, renormalizability."""

import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.renorm import ClosureKind, Reconstruction
from spectral_jax.renorm.closure_fit import fit_closure
from spectral_jax.renorm.closures import closure
from spectral_jax.renorm.exponents import continuum_shell_energies
from spectral_jax.renorm.fit_data import retained_mask
from spectral_jax.renorm.log_shift import log_shift_invariance
from spectral_jax.renorm.planted import chain_shell_budget, power_law_transport, solve_chain
from spectral_jax.renorm.shell_model import solve_shells

DRIFT, DRIFT_DIFFUSION = ClosureKind.DRIFT, ClosureKind.DRIFT_DIFFUSION

PLANTED = dict(v0=1.0, space_exponent=0.5, time_exponent=0.25)


def _closure_data(scheme, kind=DRIFT, diffusion=0.0):
    shells = sj.LogShells(1.0, 2.0, 10)
    c = np.asarray(shells.centers)
    ts = np.geomspace(0.1, 10.0, 20)
    energy = c[None, :] ** 0.5 * np.exp(-2 * c[None, :] * ts[:, None])
    truth = closure(kind, v0=1.3, space_exponent=0.6, time_exponent=0.3, diffusion=diffusion,
                    scheme=scheme)
    flux = np.asarray(truth(jnp.asarray(energy), shells.centers, jnp.asarray(ts)))
    return shells, ts, energy, flux


@pytest.mark.parametrize(
    "scheme, kind, diffusion",
    [
        (Reconstruction.GEOMETRIC, DRIFT, 0.0),
        (Reconstruction.EXPONENTIAL, DRIFT, 0.0),
        (Reconstruction.UPWIND, DRIFT_DIFFUSION, 0.4),
    ],
)
def test_exact_recovery(scheme, kind, diffusion):
    shells, ts, energy, flux = _closure_data(scheme, kind, diffusion)
    fit = fit_closure(ts, energy, flux, shells, kind=kind, scheme=scheme, num_bootstrap=8)
    np.testing.assert_allclose(
        [fit.v0, fit.space_exponent, fit.time_exponent, fit.diffusion],
        [1.3, 0.6, 0.3, diffusion],
        rtol=1e-6,
        atol=1e-8,
    )
    assert fit.explained_variance > 1 - 1e-10
    assert fit.stderr["v0"] < 1e-6


def test_noisy_recovery_and_bootstrap():
    shells, ts, energy, flux = _closure_data(Reconstruction.CENTRAL)
    rng = np.random.default_rng(1)
    noisy = flux * (1 + 0.05 * rng.standard_normal(flux.shape))
    fit = fit_closure(ts, energy, noisy, shells, scheme=Reconstruction.CENTRAL,
                      num_bootstrap=100)
    for name, truth in (("v0", 1.3), ("space_exponent", 0.6), ("time_exponent", 0.3)):
        assert fit.ci_low[name] < truth < fit.ci_high[name], (name, fit.as_dict())
        assert 0 < fit.stderr[name] < 0.1
    assert 0.9 < fit.explained_variance < 1.0


@pytest.fixture(scope="module")
def kato_run():
    """The planted family through the generic engine: solve_kato + shell_budget."""
    chain = power_law_transport(96, alpha=1.0, **PLANTED)
    c0 = jnp.asarray(np.arange(1, 97, dtype=np.float64) ** -0.75)  # β = 1.5, sign-coherent
    ts = jnp.asarray(np.concatenate([[0.0], np.geomspace(2.0 / 30, 2.0, 12)]))
    sol = sj.solve_kato(chain.operator(), c0, ts, rtol=1e-7, atol=1e-9)
    return chain, c0, ts, sol


def test_chain_matches_generic_kato(kato_run):
    chain, c0, ts, sol = kato_run
    run = solve_chain(chain, c0, ts, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sol.energies, run.energies, atol=2e-6)
    np.testing.assert_allclose(sol.eigenvalues, chain.eigenvalues[None, :] + 0 * sol.ts[:, None],
                               rtol=1e-10)
    shells = sj.LogShells(1.1, 2.0, 6)  # lam_ref 1.1: no eigenvalue 1/k on an edge
    dense = sj.shell_budget(shells, sol.eigenvalues, sol.coefficients, sol.generator)
    chained = run.shell_budget(shells)
    np.testing.assert_allclose(dense.flux, chained.flux, atol=2e-6)
    np.testing.assert_allclose(dense.energy, chained.energy, atol=2e-6)
    # Same budget from the dense generator of the chain itself.
    same = chain_shell_budget(shells, run.eigenvalues, run.coefficients, run.couplings)
    w = jnp.stack([chain.kato_generator(t) for t in np.asarray(ts)])
    full = sj.shell_budget(shells, jnp.broadcast_to(run.eigenvalues, run.coefficients.shape),
                           run.coefficients, w)
    np.testing.assert_allclose(same.transfer, full.transfer, atol=1e-12)


def _mode_mask(chain, shells, minimum=3):
    counts = np.bincount(np.asarray(shells.assign(chain.eigenvalues)), minlength=shells.count + 2)
    return (counts[:-1] >= minimum) & (counts[1:] >= minimum)


def test_planted_recovery_from_solve_kato(kato_run):
    chain, _, ts, sol = kato_run
    shells = sj.LogShells(1.1, 2.0, 6)
    budget = sj.shell_budget(shells, sol.eigenvalues, sol.coefficients, sol.generator)
    energy, flux = np.asarray(budget.energy), np.asarray(budget.flux)
    mask = retained_mask(energy[1:], reference=energy[0]) & _mode_mask(chain, shells)[None, :]
    fit = fit_closure(np.asarray(ts)[1:], energy[1:], flux[1:], shells, mask=mask,
                      num_bootstrap=20)  # default scheme: Reconstruction.EXPONENTIAL
    for name, truth in PLANTED.items():
        assert abs(fit.params[name] / truth - 1) < 0.10, fit.as_dict()
    assert fit.explained_variance > 0.99


def test_log_shift_invariance_detects_covariance():
    shells = sj.LogShells(1.0, 2.0, 30)
    e0 = jnp.asarray(continuum_shell_energies(shells, 0.5))
    ts = np.geomspace(1e-2, 1e6, 81)
    spreads = {}
    for name, b in (("covariant", -0.5), ("plain", 0.0)):
        c = closure(DRIFT, v0=1.0, space_exponent=0.5, time_exponent=b)
        sol = solve_shells(c, shells, e0, jnp.asarray(ts))
        flux = np.asarray(sol.flux)
        transfer = np.zeros((ts.size, 32, 32))
        idx = np.arange(31)
        transfer[:, idx, idx + 1] = -flux  # into s from s+1
        transfer[:, idx + 1, idx] = flux
        report = log_shift_invariance(ts, transfer, np.asarray(sol.energy), shells,
                                      taus=np.geomspace(1e-2, 1.0, 5))
        spreads[name] = report.mean_spread
    assert spreads["covariant"] < 0.02, spreads
    assert spreads["plain"] > 0.3, spreads


def test_bad_input():
    shells, ts, energy, flux = _closure_data(Reconstruction.UPWIND)
    with pytest.raises(ValueError, match="flux"):
        fit_closure(ts, energy, flux[:, :-1], shells)
    with pytest.raises(ValueError, match="kind"):
        fit_closure(ts, energy, flux, shells, kind=ClosureKind.NONE)
    with pytest.raises(TypeError, match="scheme"):
        fit_closure(ts, energy, flux, shells, scheme=3)
    with pytest.raises(ValueError, match="mask"):
        fit_closure(ts, energy, flux, shells, mask=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="geometric"):
        fit_closure(ts, energy, flux, np.array([8.0, 4.0, 1.0]))
    with pytest.raises(ValueError, match="> 0"):
        fit_closure(ts - ts[0], energy, flux, shells)
    bad = flux.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_closure(ts, energy, bad, shells)
