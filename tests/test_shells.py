"""Logarithmic shells and the modewise shell budget (docs/theory.md §2.3–2.4).

Oracles: explicit loops over modes in NumPy (the definitions, term by term), and the closed
form $c(t) = e^{-(\\Lambda+A)t}c_0$ of `RotatingPowerLaw`, whose time derivative
$\\dot c = -(\\Lambda + A)c$ gives $dE_s/dt$ independently of the Kato solver.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ROTATING_N as N, rotating_case

import spectral_jax as sj
from spectral_jax.shells.budget import _shell_budget, flux_from_transfer
from spectral_jax.shells.projector import projector_budget_along


def _random_modes(rng, n, shape=()):
    lam = np.sort(rng.uniform(0.002, 3.0, size=shape + (n,)), axis=-1)[..., ::-1].copy()
    c = rng.normal(size=shape + (n,))
    w = rng.normal(size=shape + (n, n))
    w = w - np.swapaxes(w, -1, -2)
    return lam, c, w


def _reference_budget(shells, lam, c, w):
    """Definitions of docs/theory.md §2.3–2.4 with explicit loops over modes and shells."""
    lam_ref, b, count = float(shells.lam_ref), float(shells.ratio), shells.count
    num = count + 2

    def shell_of(x):
        if x > lam_ref:
            return 0
        for s in range(1, count + 1):
            if lam_ref * b**-s < x <= lam_ref * b ** -(s - 1):
                return s
        return count + 1

    idx = [shell_of(x) for x in lam]
    energy, diss = np.zeros(num), np.zeros(num)
    transfer = np.zeros((num, num))
    for k in range(len(lam)):
        energy[idx[k]] += c[k] ** 2
        diss[idx[k]] += 2 * lam[k] * c[k] ** 2
        for j in range(len(lam)):
            transfer[idx[k], idx[j]] += 2 * w[k, j] * c[k] * c[j]
    flux = np.zeros(num - 1)
    for s in range(num - 1):
        for a in range(s + 1):
            for bb in range(s + 1, num):
                flux[s] += transfer[bb, a]
    return idx, energy, diss, transfer, flux


def test_shell_conventions():
    shells = sj.LogShells(1.0, 2.0, 3)  # edges 1, 1/2, 1/4, 1/8
    lam = jnp.asarray([2.0, 1.0, 0.75, 0.5, 0.3, 0.25, 0.2, 0.125, 0.01, 0.0])
    np.testing.assert_array_equal(shells.assign(lam), [0, 1, 1, 2, 2, 3, 3, 4, 4, 4])
    member = shells.membership(lam)
    np.testing.assert_array_equal(np.asarray(member).sum(axis=1), np.ones(10))  # one shell each
    np.testing.assert_allclose(shells.edges, [1.0, 0.5, 0.25, 0.125], rtol=1e-15)
    # centres: integer positions; position/eigenvalue_at are inverses
    np.testing.assert_allclose(shells.position(shells.centers), np.arange(5.0), atol=1e-14)
    x = jnp.linspace(-1.0, 6.0, 9)
    np.testing.assert_allclose(shells.position(shells.eigenvalue_at(x)), x, atol=1e-13)
    # covering: the given range fits inside shells 1..S
    cov = sj.LogShells.covering(1.0, 1e-3, 2.0, margin=1.1)
    assert int(cov.assign(jnp.asarray([1.0]))[0]) == 1
    assert int(cov.assign(jnp.asarray([1e-3]))[0]) == cov.count


@pytest.mark.parametrize(
    "args", [(0.0, 2.0, 3), (1.0, 1.0, 3), (1.0, 2.0, 0), (float("nan"), 2.0, 3), (1.0, 2.0, 2.5)]
)
def test_shell_validation(args):
    with pytest.raises(ValueError):
        sj.LogShells(*args)


def test_budget_shape_and_dtype_errors(rng):
    shells = sj.LogShells(1.0, 2.0, 3)
    lam, c, w = map(jnp.asarray, _random_modes(rng, 5))
    with pytest.raises(ValueError, match="shell_budget"):
        sj.shell_budget(shells, lam, c[:4], w)
    with pytest.raises(ValueError, match="shell_budget"):
        sj.shell_budget(shells, lam, c, w[:, :4])
    with pytest.raises(TypeError, match="dtype"):
        sj.shell_budget(shells, lam, c.astype(jnp.float32), w)


def test_budget_matches_definitions(rng):
    shells = sj.LogShells(2.0, 2.5, 4)
    lam, c, w = _random_modes(rng, 13)
    budget = sj.shell_budget(shells, jnp.asarray(lam), jnp.asarray(c), jnp.asarray(w))
    idx, energy, diss, transfer, flux = _reference_budget(shells, lam, c, w)
    np.testing.assert_array_equal(shells.assign(jnp.asarray(lam)), idx)
    np.testing.assert_allclose(budget.energy, energy, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(budget.dissipation, diss, rtol=1e-13, atol=1e-14)
    scale = np.abs(transfer).max()
    np.testing.assert_allclose(budget.transfer, transfer, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(budget.flux, flux, rtol=0, atol=1e-13 * scale)


def test_intra_shell_cancellation_exact(rng):
    """Huge intra-shell couplings (near-degenerate pairs) cancel bit for bit."""
    n = 24
    shells = sj.LogShells(1.0, 2.0, 5)
    lam, c, w = _random_modes(rng, n, (7,))
    # near-degenerate pairs inside shells: W_kj ~ G/gap blows up
    w = w * (1.0 + 1e8 * (np.abs(lam[..., :, None] - lam[..., None, :]) < 0.05))
    b = sj.shell_budget(shells, jnp.asarray(lam), jnp.asarray(c), jnp.asarray(w))
    t = np.asarray(b.transfer)
    largest = np.abs(t).max(axis=(1, 2))
    diag = np.abs(np.diagonal(t, axis1=1, axis2=2)).max(axis=1)
    assert np.all(diag <= 1e-14 * largest)  # in fact exactly zero
    np.testing.assert_array_equal(t, -np.swapaxes(t, 1, 2))  # antisymmetric bit for bit
    # fluxes telescope: Π_{s-1|s} - Π_{s|s+1} = Σ_s' T_ss'
    net = np.asarray(b.rate + b.dissipation)
    np.testing.assert_allclose(net, t.sum(axis=2), rtol=0, atol=1e-13 * largest.max())
    np.testing.assert_allclose(np.asarray(b.net_transfer), t.sum(axis=2), rtol=0, atol=0)
    # and the flux is the definition Σ_{a<=s<b'} T_b'a (checked per time against loops)
    for i in range(t.shape[0]):
        _, _, _, _, flux = _reference_budget(shells, lam[i], c[i], np.asarray(w[i]))
        np.testing.assert_allclose(b.flux[i], flux, rtol=0, atol=1e-12 * largest[i])
    # total energy changes only by dissipation
    np.testing.assert_allclose(net.sum(axis=1), 0.0, atol=1e-13 * largest.max())


def test_leading_axes_and_single_compilation(rng):
    shells = sj.LogShells(1.0, 2.0, 3)
    lam, c, w = (jnp.asarray(x) for x in _random_modes(rng, 6, (2, 3)))
    batched = sj.shell_budget(shells, lam, c, w)
    assert batched.energy.shape == (2, 3, 5) and batched.transfer.shape == (2, 3, 5, 5)
    assert batched.flux.shape == (2, 3, 4)
    single = sj.shell_budget(shells, lam[1, 2], c[1, 2], w[1, 2])
    np.testing.assert_allclose(batched.transfer[1, 2], single.transfer, rtol=1e-14, atol=1e-15)
    before = _shell_budget._cached._cache_size()
    sj.shell_budget(sj.LogShells(0.7, 3.0, 3), lam * 2.0, c, w)  # new values, same shapes
    sj.shell_budget(shells, lam + 0.1, c * 3.0, w)
    assert _shell_budget._cached._cache_size() == before
    np.testing.assert_allclose(
        flux_from_transfer(batched.transfer)[0, 1], batched.flux[0, 1], rtol=1e-15
    )


# --------------------------------------------------------------------------------------------
# Along a Kato run: the shell ODE against the closed form
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotating():
    lam = np.geomspace(1.7, 0.004, N)
    return rotating_case(lam)


def test_shell_ode_along_kato_matches_closed_form(rotating):
    op, c0, ts, sol, exact_c, exact_dc = rotating
    shells = sj.LogShells(2.0, 2.0, 8)
    member = shells.membership(op.eigenvalues)  # fixed eigenvalues: no migration
    exact_energy = exact_c**2 @ member
    exact_rate = (2.0 * exact_c * exact_dc) @ member
    total = float(jnp.sum(c0**2))

    modewise = sj.shell_budget(shells, sol.eigenvalues, sol.coefficients, sol.generator)
    projector = projector_budget_along(shells, op, sol.ts, sol.residuals)
    assert float(jnp.max(jnp.abs(modewise.energy - exact_energy))) <= 1e-6 * total
    # dE_s/dt = -D_s + Π_{s-1|s} - Π_{s|s+1}, relative to the total energy
    err_modewise = float(jnp.max(jnp.abs(modewise.rate - exact_rate))) / total
    err_projector = float(jnp.max(jnp.abs(projector.rate - exact_rate))) / total
    assert err_modewise <= 1e-6 and err_projector <= 1e-6
    # the two forms give the same numbers, entry by entry
    scale = float(jnp.max(jnp.abs(modewise.transfer)))
    np.testing.assert_allclose(projector.transfer, modewise.transfer, atol=1e-11 * scale)
    np.testing.assert_allclose(projector.flux, modewise.flux, atol=1e-11 * scale)
    np.testing.assert_allclose(projector.dissipation, modewise.dissipation, atol=1e-12 * total)
    # the check has teeth: the flux is a sizeable part of the rate
    assert float(jnp.max(jnp.abs(modewise.flux))) > 1e-2 * total
