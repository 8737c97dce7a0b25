"""Exponent formulas, the lazy loss, microscopic checks and the self-similar collapse."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gamma

import spectral_jax as sj
from spectral_jax.renorm.exponents import (
    continuum_shell_energies,
    lazy_loss,
    lazy_loss_asymptotic,
    measure_exponent,
    power_law_modes,
    predicted_exponent,
    predicted_resolution_exponents,
    shell_energies,
    sigma,
    similarity_collapse,
)
from spectral_jax.renorm.shell_model import solve_shells


def test_formulas():
    assert sigma(2.0, 2.0) == 0.5
    assert predicted_exponent(2.0, 2.0) == 0.5
    assert predicted_exponent(2.0, 2.0, space_exponent=0.5) == pytest.approx(1.0)
    assert predicted_exponent(2.0, 2.0, space_exponent=0.7) == pytest.approx(0.5 / 0.7)
    assert predicted_exponent(2.0, 2.0, space_exponent=0.5, time_exponent=-0.5) == 0.5
    assert predicted_exponent(2.0, 2.0, space_exponent=2.0) == 0.5  # slow transport: σ
    with pytest.raises(ValueError, match="beta"):
        sigma(1.0, 1.0)
    with pytest.raises(ValueError, match="b > -1"):
        predicted_exponent(1.0, 2.0, space_exponent=0.5, time_exponent=-1.0)
    # Keyword names: α is the spectral exponent, β the target exponent (no `alpha` here).
    assert predicted_exponent(spectral_exponent=2.0, target_exponent=3.0) == 1.0


def test_resolution_exponents():
    # docs/theory.md §2.6: loss floors n^-(β-1), p^-(β-1); kernel regression n^-min(β-1, 2α).
    r = predicted_resolution_exponents(1.5, 2.5)
    assert (r.loss_floor_data, r.loss_floor_width, r.test_loss_data) == (1.5, 1.5, 1.5)
    r = predicted_resolution_exponents(0.5, 3.0)
    assert (r.loss_floor_data, r.loss_floor_width, r.test_loss_data) == (2.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="target_exponent"):
        predicted_resolution_exponents(1.0, 0.5)


def test_one_sign_convention_for_exponents():
    # Every exponent is a decay exponent: y ∝ x^-p gives p > 0 from each route.
    ts = np.geomspace(1.0, 1e3, 12)
    loss = 2.0 * ts**-0.8
    assert sj.fit_power_law(ts, loss).exponent == pytest.approx(0.8, abs=1e-12)
    assert measure_exponent(ts, loss, 1.0, 1e3).exponent == pytest.approx(0.8, abs=1e-12)
    assert predicted_exponent(1.0, 1.8) == pytest.approx(0.8)


def test_lazy_loss_matches_gamma_asymptotics():
    alpha, beta = 2.0, 3.0
    lam, eps = power_law_modes(20000, alpha, beta)
    ts = np.geomspace(10.0, 1e4, 7)
    exact = lazy_loss(lam, eps, ts)
    approx = lazy_loss_asymptotic(alpha, beta, ts, num_samples=lam.size)
    # Corrections: discreteness O(K^{-1}) at the frontier mode K = (2t)^{1/α}.
    np.testing.assert_allclose(exact / approx, 1.0, atol=0.06)
    assert abs(exact[-1] / approx[-1] - 1) < 0.01
    assert gamma(1.0) == 1.0  # σ = 1 here: Γ(σ)/(2nα) (2t)^{-1}


def test_lazy_loss_is_the_kato_run_of_a_frozen_kernel(rng):
    # Microscopic reference: solve_kato on a frozen, randomly rotated power-law kernel.
    n = 24
    lam, eps = power_law_modes(n, 1.5, 2.0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    m = (q * lam[None, :]) @ q.T
    e0 = q @ np.sqrt(eps)
    ts = np.linspace(0.0, 20.0, 6)
    sol = sj.solve_kato(sj.FrozenOperator(jnp.asarray(0.5 * (m + m.T))), jnp.asarray(e0),
                        jnp.asarray(ts), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(sol.loss), lazy_loss(lam, eps, ts), rtol=1e-6)


def test_measure_exponent_and_continuum_energies():
    ts = np.geomspace(1.0, 1e3, 20)
    fit = measure_exponent(ts, 3.0 * ts**-0.7, 1.0, 1e3)
    assert fit.exponent == pytest.approx(0.7, abs=1e-10)
    with pytest.raises(ValueError, match="3 times"):
        measure_exponent(ts, ts**-1.0, 2e3, 3e3)
    shells = sj.LogShells(1.0, 2.0, 10)
    e = continuum_shell_energies(shells, 0.5)
    assert e.sum() == pytest.approx(np.exp(0.5 * np.log(2.0)) / 0.5)  # ∫_{-ln2}^∞ e^{-σu}
    np.testing.assert_allclose(e[2:-1] / e[1:-2], 2.0**-0.5)


def test_self_similar_collapse_lazy():
    lam, eps = power_law_modes(20000, 1.0, 1.5)
    shells = sj.LogShells(1.3, 2.0, 13)
    ts = np.geomspace(1e-2, 1e4, 60)
    member = np.asarray(shells.membership(jnp.asarray(lam)))
    energy = np.stack([member.T @ (eps * np.exp(-2 * lam * t)) for t in ts])
    good = similarity_collapse(ts, energy, shells.centers, shells=np.arange(5, 13))
    # Against t alone (no λ_s) the same curves do not collapse.
    bad = similarity_collapse(ts, energy, shells.centers, space_exponent=0.0,
                              shells=np.arange(5, 13))
    assert good.spread < 0.01 < 0.1 < bad.spread, (good.spread, bad.spread)
    # The shell ODE's curves are exactly e^{-2x}.
    sol = solve_shells(None, shells, jnp.asarray(shell_energies(shells, lam, eps)),
                       jnp.asarray(ts))
    ode = similarity_collapse(ts, np.asarray(sol.energy), shells.centers)
    # y = E_s(t)/E_s(t_0) = exp(-2 λ_s (t - t_0)) = exp(-2 (x - x_0)).
    np.testing.assert_allclose(ode.y, np.exp(-2 * (ode.x - ode.x[:1])), rtol=1e-5, atol=1e-10)
    assert ode.spread < 5e-3  # linear interpolation on the 60-point log grid
