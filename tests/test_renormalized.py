"""Renormalized shell ODE: closed forms, conventions, lazy limit and drift exponents."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.renorm import ClosureKind, Reconstruction
from spectral_jax.renorm.closures import closure, transport_flux
from spectral_jax.renorm.exponents import (
    continuum_shell_energies,
    lazy_loss,
    measure_exponent,
    power_law_modes,
    shell_energies,
    shell_ode_exponent,
)
from spectral_jax.renorm.faces import net_inflow
from spectral_jax.renorm.shell_model import solve_shells

UPWIND, CENTRAL = Reconstruction.UPWIND, Reconstruction.CENTRAL
GEOMETRIC, EXPONENTIAL = Reconstruction.GEOMETRIC, Reconstruction.EXPONENTIAL
DRIFT = ClosureKind.DRIFT


def test_no_closure_is_exact_exponential_decay():
    shells = sj.LogShells(1.0, 2.0, 8)
    e0 = jnp.linspace(1.0, 2.0, 10)
    ts = jnp.linspace(0.0, 5.0, 11)
    sol = solve_shells(None, shells, e0, ts, rtol=1e-10, atol=1e-14)
    exact = e0[None, :] * jnp.exp(-2.0 * shells.centers[None, :] * ts[:, None])
    np.testing.assert_allclose(sol.energy, exact, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sol.flux, 0.0)


def test_flux_conventions_and_schemes():
    centers = sj.LogShells(1.0, 2.0, 3).centers
    energy = jnp.array([1.0, 2.0, 4.0, 8.0, 16.0])
    du = np.log(2.0)
    lam_f = np.sqrt(np.asarray(centers[:-1] * centers[1:]))
    kw = dict(v0=1.0, space_exponent=0.5, time_exponent=0.0, diffusion=0.0)
    up = transport_flux(energy, centers, 1.0, **kw, scheme=UPWIND)
    # v0 > 0 carries energy toward large λ: Π (from low shells to high shells) < 0, and the
    # upwind density is that of the shell the drift comes from (s + 1).
    np.testing.assert_allclose(up, -(lam_f**0.5) * np.asarray(energy[1:]) / du, rtol=1e-12)
    reverse = transport_flux(energy, centers, 1.0, **{**kw, "v0": -1.0}, scheme=UPWIND)
    np.testing.assert_allclose(reverse, lam_f**0.5 * np.asarray(energy[:-1]) / du, rtol=1e-12)
    central = transport_flux(energy, centers, 1.0, **kw, scheme=CENTRAL)
    np.testing.assert_allclose(central, -(lam_f**0.5) * 1.5 * np.asarray(energy[:-1]) / du)
    geo = transport_flux(energy, centers, 1.0, **kw, scheme=GEOMETRIC)
    np.testing.assert_allclose(geo, -(lam_f**0.5) * np.sqrt(2.0) * np.asarray(energy[:-1]) / du)
    # Exponential: E_s E_{s+1} ln(E_s/E_{s+1})/(E_s - E_{s+1}) = 2 ln 2 E_s here; E/Δu when equal.
    expo = transport_flux(energy, centers, 1.0, **kw, scheme=EXPONENTIAL)
    np.testing.assert_allclose(expo, -(lam_f**0.5) * 2 * np.log(2.0) * np.asarray(energy[:-1]) / du,
                               rtol=1e-12)
    flat = transport_flux(jnp.full(5, 3.0), centers, 1.0, **kw, scheme=EXPONENTIAL)
    np.testing.assert_allclose(flat, -(lam_f**0.5) * 3.0 / du, rtol=1e-12)
    near = transport_flux(jnp.array([1.0, 1.0 + 1e-9, 1.0, 1.0 - 1e-4, 2.0]), centers, 1.0, **kw,
                          scheme=EXPONENTIAL)
    assert np.all(np.isfinite(np.asarray(near)))
    # Diffusion runs down the gradient: energy grows with s, so the flux toward s+1 is < 0.
    diff = transport_flux(energy, centers, 1.0, 0.0, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(diff, -np.asarray(energy[1:] - energy[:-1]) / du**2)
    # Time factor (t/t_ref)^b with a time axis.
    ts = jnp.array([1.0, 4.0])
    two = transport_flux(jnp.stack([energy, energy]), centers, ts, 1.0, 0.5, 0.5, 0.0)
    np.testing.assert_allclose(two[1], 2.0 * two[0], rtol=1e-12)


@pytest.mark.parametrize("scheme", [UPWIND, CENTRAL, GEOMETRIC, EXPONENTIAL])
def test_transport_conserves_energy_without_dissipation(scheme):
    shells = sj.LogShells(1.0, 2.0, 6)
    e0 = jnp.asarray(continuum_shell_energies(shells, 0.5))
    c = closure(ClosureKind.DRIFT_DIFFUSION, v0=1.0, space_exponent=0.5, diffusion=0.2,
                scheme=scheme)
    ts = jnp.linspace(0.0, 3.0, 7)
    sol = solve_shells(c, shells, e0, ts, rates=jnp.zeros(8), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(sol.total, float(e0.sum()), rtol=1e-8)
    assert float(sol.energy[-1, 0]) > 1.5 * float(e0[0])  # energy moved to large λ
    if scheme is UPWIND:  # the other schemes are not positivity preserving
        assert float(sol.energy.min()) > -1e-10


@pytest.mark.parametrize("ratio", [2.0, 4.0])
def test_scheme_bias_on_exponential_profile(ratio):
    # ε(u) ∝ e^{-σu}: the face density is off by the factors of `Reconstruction`'s docstring;
    # they depend on the ratio except for EXPONENTIAL, exact at every ratio.
    sig = 0.5
    shells = sj.LogShells(1.0, ratio, 6)
    energy = jnp.asarray(continuum_shell_energies(shells, sig))
    du = np.log(ratio)
    x = sig * du
    u_face = du * np.arange(7)
    exact = -np.exp(-0.5 * u_face) * np.exp(-sig * u_face)  # v ε at the face, v0 = 1, a = 0.5
    factors = {
        UPWIND: (1 - np.exp(-x)) / x,
        CENTRAL: np.sinh(x) / x,
        GEOMETRIC: 2 * np.sinh(x / 2) / x,
        EXPONENTIAL: 1.0,
    }
    for scheme, factor in factors.items():
        flux = transport_flux(energy, shells.centers, 1.0, 1.0, 0.5, 0.0, 0.0, scheme=scheme)
        np.testing.assert_allclose(np.asarray(flux)[1:-1] / exact[1:-1], factor, rtol=1e-10)


@pytest.mark.slow  # compile-bound, moved out of CI's 15-minute budget
def test_user_callable_and_vmap_over_parameters():
    shells = sj.LogShells(1.0, 2.0, 6)
    e0 = jnp.asarray(continuum_shell_energies(shells, 0.5))
    ts = jnp.geomspace(0.1, 10.0, 5)
    v0s = jnp.array([0.0, 0.5, 1.0])

    def total(v0):
        c = closure(DRIFT, v0=v0, space_exponent=0.5, dtype=jnp.float64)
        return solve_shells(c, shells, e0, ts, solver=diffrax.Tsit5()).total

    batched = jax.vmap(total)(v0s)
    for i, v0 in enumerate(np.asarray(v0s)):
        np.testing.assert_allclose(batched[i], total(float(v0)), rtol=1e-10)
    assert float(batched[2, -1]) < float(batched[1, -1]) < float(batched[0, -1])

    def user(energy, centers, t):
        return transport_flux(energy, centers, t, 1.0, 0.5, 0.0, 0.0)

    np.testing.assert_allclose(
        solve_shells(user, shells, e0, ts, solver=diffrax.Tsit5()).energy,
        solve_shells(closure(DRIFT, v0=1.0, space_exponent=0.5), shells, e0, ts,
                     solver=diffrax.Tsit5()).energy,
        rtol=1e-10,
    )


def test_bad_input():
    shells = sj.LogShells(1.0, 2.0, 4)
    with pytest.raises(ValueError, match="initial_energy"):
        solve_shells(None, shells, jnp.ones(5), jnp.linspace(0.0, 1.0, 3))
    with pytest.raises(ValueError, match="scheme"):
        closure(DRIFT, scheme="downwind")
    with pytest.raises(ValueError, match="kind"):
        closure("advection")
    with pytest.raises(TypeError, match="scheme"):
        closure(DRIFT, scheme=None)
    with pytest.raises(ValueError, match="geometric"):
        solve_shells(None, jnp.array([8.0, 4.0, 1.0]), jnp.ones(3), jnp.linspace(0.0, 1.0, 3))
    with pytest.raises(ValueError, match="increasing"):
        solve_shells(None, shells, jnp.ones(6), jnp.array([0.0, 2.0, 1.0]))


def test_string_options_are_deprecated_but_work():
    with pytest.warns(DeprecationWarning, match="Reconstruction.CENTRAL"):
        old = closure(DRIFT, scheme="central")
    with pytest.warns(DeprecationWarning, match="ClosureKind.DRIFT_DIFFUSION"):
        kind = closure("drift+diffusion", diffusion=0.3)
    assert old.scheme is CENTRAL and float(kind.diffusion) == 0.3
    assert closure(ClosureKind.NONE, v0=2.0, diffusion=1.0).v0 == 0.0


def test_rate_is_dissipation_plus_net_inflow():
    shells = sj.LogShells(1.0, 2.0, 4)
    e0 = jnp.asarray(continuum_shell_energies(shells, 0.5))
    ts = jnp.linspace(0.0, 1.0, 3)
    c = closure(DRIFT, v0=1.0, space_exponent=0.5)
    sol = solve_shells(c, shells, e0, ts, solver=diffrax.Tsit5())
    np.testing.assert_allclose(np.asarray(net_inflow(jnp.array([1.0, 2.0]))), [-1.0, -1.0, 2.0])
    flux = c(sol.energy, shells.centers, sol.ts)
    np.testing.assert_allclose(sol.flux, flux, rtol=1e-12)
    rate = -2 * shells.centers[None, :] * sol.energy + net_inflow(flux)
    np.testing.assert_allclose(sol.rate, rate, rtol=1e-12)
    np.testing.assert_allclose(sol.loss(10), sol.total / 20)
    assert bool(sol.succeeded)


def test_lazy_shell_ode_reproduces_lazy_loss():
    # Microscopic lazy loss Σ ε_k e^{-2λ_k t} against the shell ODE started from the same shell
    # energies, one rate 2λ_s per shell. σ = 1. The finite spectrum (n = 4000) lacks the energy
    # Σ_{k>n} k^{-β} of the continuum: a relative (K/n)^{β-1} with K = (2t)^{1/α} the frontier
    # mode, below 1% up to t = 8e4 for α = 2, β = 3.
    alpha, beta = 2.0, 3.0
    lam, eps = power_law_modes(4000, alpha, beta)
    shells = sj.LogShells(1.3, 2.0, 25)  # no eigenvalue on a shell edge
    e0 = shell_energies(shells, lam, eps)
    ts = np.geomspace(1.0, 1e4, 41)
    sol = solve_shells(None, shells, jnp.asarray(e0), jnp.asarray(ts), atol=1e-14)
    exact = lazy_loss(lam, eps, ts) * 2 * lam.size
    rel = np.abs(np.asarray(sol.total) / exact - 1.0)
    # Shell discretisation: one rate per shell instead of a mixture of exponentials. Where the
    # frontier crosses shells of a few modes (α = 2: shell 1 holds k = 1, shell 3 k = 2..3) the
    # error is O(1) per shell, 17% of L at t = 10; once the frontier is in shells of ≥ 15 modes
    # (t ≥ 1e3) it is the continuum prefactor error 2 sinh(σΔu/2)/(σΔu) - 1 = 2.0% (measured
    # 1.5-1.8%).
    x = 1.0 * np.log(2.0)
    assert rel[ts >= 10].max() < 0.2, rel
    assert rel[ts >= 1e3].max() < 2 * np.sinh(x / 2) / x - 1 + 0.005, rel
    fit = measure_exponent(ts, np.asarray(sol.total), 10.0, 1e4)  # three decades
    assert abs(fit.exponent - 1.0) < 0.02, fit
    micro = measure_exponent(ts, exact, 10.0, 1e4)
    assert abs(micro.exponent - 1.0) < 0.02, micro


@pytest.mark.parametrize(
    "a, b, expected, window",
    [
        (None, 0.0, 0.5, (1e2, 1e5)),
        (0.5, 0.0, 1.0, (1e4, 1e7)),
        (0.7, 0.0, 0.5 / 0.7, (1e5, 1e8)),
        (0.5, -0.5, 0.5, (1e3, 1e6)),  # covariant b = a - 1: the exponent stays σ
    ],
)
def test_drift_exponents(a, b, expected, window):
    if a is None:
        c = closure(ClosureKind.NONE)
    else:
        c = closure(DRIFT, v0=1.0, space_exponent=a, time_exponent=b)
    # One shell count and time grid for all cases (one compilation).
    fit, sol = shell_ode_exponent(0.5, c, t_min=window[0], t_max=window[1], count=80,
                                  t_start=1e-2, t_end=1e8)
    assert bool(sol.result == diffrax.RESULTS.successful)
    assert abs(fit.exponent - expected) < 0.03, (fit, expected)
