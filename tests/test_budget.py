"""Windowed shell budget with eigenvalues migrating across shell edges.

Operator: `BreathingSpectrum` (experiments/shell_budget.py), $\\lambda_k(t) = \\lambda_k(0)^{p(t)}$,
$p = 1 + a\\sin\\omega t$, with rotating eigenvectors. Its crossing times are known in closed
form ($\\sin\\omega\\tau = (\\ln\\text{edge}/\\ln\\lambda_k(0) - 1)/a$), an oracle independent of
the Hermite/Newton root-finding. The budget closure itself is checked against its own three
independent parts; tests below show that it fails when any part is wrong (a crossing dropped,
crossing times shifted, migration left out).
"""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.experiments.shell_budget import BreathingSpectrum
from spectral_jax.shells import (
    BudgetForm,
    budget_residual,
    find_crossings,
    track_spectrum,
    windowed_budget,
)

N = 8
SHELLS = sj.LogShells(1.3, 2.0, 5)
TS = jnp.linspace(0.0, 8.0, 41)


@pytest.fixture(scope="module")
def case():
    op = BreathingSpectrum.random(N, 1.5, 0.3, 0.4, 1.0, seed=1)
    e0 = jnp.asarray(np.random.default_rng(2).normal(size=N))
    budget = windowed_budget(SHELLS, op, e0, TS)
    return op, e0, budget


def _exact_crossings(op, t0, t1):
    base = np.asarray(op.base)
    a, w = float(op.amplitude), float(op.omega)
    out = []
    for k, lam in enumerate(base):
        if lam == 1.0:
            continue  # λ_1 = 1 does not move
        for j, edge in enumerate(np.asarray(SHELLS.edges)):
            y = (np.log(edge) / np.log(lam) - 1.0) / a
            if abs(y) >= 1:
                continue
            for m in range(-1, int(w * t1 / (2 * np.pi)) + 2):
                for phase in (np.arcsin(y), np.pi - np.arcsin(y)):
                    t = (phase + 2 * np.pi * m) / w
                    if t0 < t < t1:
                        out.append(t)
    return np.sort(out)


def test_crossing_times_match_closed_form(case):
    op, _, budget = case
    exact = _exact_crossings(op, float(TS[0]), float(TS[-1]))
    found = np.asarray(budget.crossings.time)
    assert len(exact) >= 20 and len(found) == len(exact)
    np.testing.assert_allclose(found, exact, rtol=0, atol=1e-10)
    assert set(np.asarray(budget.crossings.direction).tolist()) == {-1, 1}  # down and up
    # Hermite estimates alone (no Newton) are already close on this grid
    track = track_spectrum(op, TS)
    rough = find_crossings(SHELLS, TS, track.eigenvalues, track.rates)
    np.testing.assert_allclose(np.asarray(rough.time), exact, atol=1e-3)


def test_windowed_budget_closes_with_migration(case):
    _, _, budget = case
    res = np.asarray(budget_residual(budget))
    total = float(budget.total_energy[0])
    assert np.all(np.isfinite(res))
    assert np.max(np.abs(res)) <= 1e-5, np.max(np.abs(res))
    assert abs(np.sum(res, axis=0)).max() <= 1e-5  # whole run
    # every part matters: migration and transfer are both large here
    without_migration = res + np.asarray(budget.migration) / total
    assert np.max(np.abs(without_migration)) > 1e-2
    assert float(jnp.max(jnp.abs(budget.flux))) / total > 1e-2
    # migration conserves energy; crossing energies are those of real modes
    np.testing.assert_allclose(np.asarray(budget.migration).sum(axis=1), 0.0, atol=1e-14 * total)
    assert np.all(np.asarray(budget.crossings.energy) >= 0)
    # instantaneous budget at the window ends is the ShellBudget there
    assert budget.instantaneous.energy.shape == (TS.shape[0], SHELLS.num_shells)


def test_projector_form_closes_too(case):
    op, e0, budget = case
    projector = windowed_budget(
        SHELLS, op, e0, TS, form=BudgetForm.PROJECTOR, crossings=budget.crossings
    )
    assert projector.max_relative_residual <= 1e-5
    total = float(budget.total_energy[0])
    np.testing.assert_allclose(projector.transfer, budget.transfer, atol=1e-10 * total)
    np.testing.assert_allclose(projector.dissipation, budget.dissipation, atol=1e-10 * total)


@pytest.mark.slow  # ~20-40 s; CI time budget (make test-all runs it)
def test_budget_detects_wrong_crossings(case):
    op, e0, budget = case
    c = budget.crossings
    # drop the crossing that carries the most energy: residual of that size and a warning
    drop = int(jnp.argmax(c.energy))
    keep = jnp.asarray([i for i in range(c.count) if i != drop])
    fewer = type(c)(*(getattr(c, f)[keep] for f in ("time", "rank", "edge", "direction",
                                                      "window", "energy")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        broken = windowed_budget(SHELLS, op, e0, TS, crossings=fewer)
    assert any("without a detected crossing" in str(w.message) for w in caught)
    total = float(budget.total_energy[0])
    assert broken.max_relative_residual > 0.5 * float(c.energy[drop]) / total
    # crossing times off by 1e-4: the quadrature straddles the jump of the shell rates
    shifted = type(c)(c.time + 1e-4, c.rank, c.edge, c.direction, c.window, c.energy)
    late = windowed_budget(SHELLS, op, e0, TS, crossings=shifted)
    assert late.max_relative_residual > 1e3 * budget.max_relative_residual
    assert late.max_relative_residual > 1e-7


def test_input_errors(case):
    op, e0, _ = case
    with pytest.raises(ValueError, match="form must be a BudgetForm"):
        windowed_budget(SHELLS, op, e0, TS, form="spectral")
    with pytest.raises(ValueError, match="nodes and subdivisions"):
        windowed_budget(SHELLS, op, e0, TS, nodes=0)
    with pytest.raises(ValueError, match="at least 2 times"):
        windowed_budget(SHELLS, op, e0, TS[:1])
    with pytest.raises(ValueError, match="increasing"):
        windowed_budget(SHELLS, op, e0, TS[::-1])
