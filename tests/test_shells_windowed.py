"""Windowed budget: graded quadrature, windows ending on an avoided crossing, and a self-check
that fails when the Kato run is wrong.

Operator (issue 10): $M(t) = U\\,[[3+(t-1), g, 0], [g, 3-(t-1), 0], [0, 0, 0.5]]\\,U^T$ with
$g = 10^{-9}$: an avoided crossing at t = 1, where the Kato coupling inside the pair is
$G_{12}/(2g) = 5\\cdot10^8$. Its eigenvalues are known in closed form,
$3 \\pm \\sqrt{(t-1)^2 + g^2}$ and 0.5.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
import spectral_jax.shells.windowed as windowed_module
from spectral_jax.shells.quadrature import graded_quadrature, piece_density

G = 1e-9
E0 = jnp.asarray([1.0, 0.7, -0.4])
TS = jnp.linspace(0.0, 1.0, 6)  # the last window ends on the avoided crossing


def _avoided_crossing(g=G):
    u = jnp.asarray(np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0])

    def m(t):
        z = jnp.zeros_like(t)
        rows = [[3 + (t - 1), g + z, z], [g + z, 3 - (t - 1), z], [z, z, 0.5 + z]]
        return u @ jnp.stack([jnp.stack(r) for r in rows]) @ u.T

    return sj.CallableOperator(m)


def test_graded_quadrature_resolves_a_pole_at_a_window_end():
    # Inter-shell coupling 1/(2·distance) to the poles ±ig of the Lorentzian g/(t^2 + g^2).
    # The pole sits at t = 0, where floats resolve t to eps·|t|: at t = 1 the time grid itself
    # limits any rule to ~eps/g of relative accuracy.
    def density(t):
        return piece_density(1.0, 0.5 / np.sqrt(t**2 + G**2), 6.0)

    ends = np.asarray([-0.5, 0.0, 0.5])
    quad = graded_quadrature(ends, ends, density, nodes=10, subdivisions=1)
    assert quad.pieces < 120  # graded (geometric), not ~1e8 uniform pieces
    integral = np.sum(quad.weights * G / (quad.times**2 + G**2))
    assert integral == pytest.approx(2.0 * np.arctan(0.5 / G), rel=1e-13)
    np.testing.assert_array_equal(np.bincount(quad.window), [quad.pieces * 5] * 2)


@pytest.fixture(scope="module")
def op():
    return _avoided_crossing()


@pytest.mark.parametrize(
    "lam_ref, g, crossings, tol",
    [
        # pair inside shell 1 (λ− crosses the edge 2.25 at t = 0.25)
        (4.5, G, 1, 1e-8),
        # edge 3 between the pair: the transfer is fast, on a time ~g, and at t = 1 the
        # eigenvectors themselves are only defined to eps·|M|/(2g) ≈ 3e-7, so are E_s(1)
        pytest.param(6.0, G, 0, 1e-6, marks=pytest.mark.slow),
        pytest.param(6.0, 1e-6, 0, 1e-8, marks=pytest.mark.slow),
    ],
    ids=["inside-a-shell", "straddling-an-edge", "straddling-an-edge-g1e-6"],
)
def test_window_end_on_an_avoided_crossing(lam_ref, g, crossings, tol):
    shells = sj.LogShells(lam_ref, 2.0, 4)
    budget = sj.windowed_budget(shells, _avoided_crossing(g), E0, TS)
    assert budget.crossings.count == crossings
    if crossings:
        np.testing.assert_allclose(budget.crossings.time, [0.25], atol=1e-12)
    assert budget.max_relative_residual <= tol, budget.max_relative_residual
    # energy moves between shells: the closure is not trivially small
    assert float(jnp.max(jnp.abs(budget.change))) / float(budget.total_energy[0]) > 0.1


class _Run:
    """A `KatoSolution` with some fields replaced."""

    def __init__(self, sol, **fields):
        self._sol, self._fields = sol, fields

    def __getattr__(self, name):
        if name in self._fields:
            return self._fields[name]
        return getattr(self._sol, name)


def _wrong_kato(monkeypatch, delta, reference: bool):
    """Kato runs that solved the right ODE from a wrong state, c → (1 + δ)c (still a solution,
    so the run is self-consistent), and whose reference is kept or withheld."""
    real = windowed_module.solve_kato

    def wrong(*args, **kwargs):
        sol = real(*args, **kwargs)
        ref = getattr(sol, "reference_coefficients", None)
        ref = sol.coefficients if ref is None else ref
        scale = 1.0 + delta
        return _Run(
            sol,
            coefficients=scale * sol.coefficients,
            reduced=jax.tree_util.tree_map(lambda x: scale**2 * x, sol.reduced),
            reference_coefficients=ref if reference else None,
        )

    monkeypatch.setattr(windowed_module, "solve_kato", wrong)


def test_self_check_catches_a_wrong_kato_run(op, monkeypatch):
    shells = sj.LogShells(4.5, 2.0, 4)
    delta = 1e-4
    _wrong_kato(monkeypatch, delta, reference=True)
    caught = sj.windowed_budget(shells, op, E0, TS)
    assert caught.independent
    # residual ≈ 2δ · (energy dissipated in a window) / E(0): far above the 1e-8 closure
    assert caught.max_relative_residual > 0.2 * delta, caught.max_relative_residual
    # without the independent reference the same wrong run closes: energies and rates agree
    _wrong_kato(monkeypatch, delta, reference=False)
    blind = sj.windowed_budget(shells, op, E0, TS)
    assert not blind.independent
    assert blind.max_relative_residual <= 1e-8


def test_energies_come_from_the_reference_when_the_solver_has_one(op):
    fields = {f.name for f in dataclasses.fields(sj.KatoSolution)}
    budget = sj.windowed_budget(sj.LogShells(4.5, 2.0, 4), op, E0, TS)
    assert budget.independent == ("reference_coefficients" in fields)
    # either way the energies agree with the Kato run's own to the solver tolerance
    np.testing.assert_allclose(
        budget.energy, budget.instantaneous.energy, atol=1e-8 * float(budget.total_energy[0])
    )
