"""Resolution frontier, the frozen (lazy) operator, and the shell-dynamics figure.

Oracle: for a frozen kernel $E_s(t) = \\sum_{k\\in s}\\varepsilon_k(0)e^{-2\\lambda_k t}$, and a
shell whose modes sit at its centre loses half its energy at $\\lambda = \\ln 2/(2t)$. With
modes spread over a shell the frontier is within half a shell of that,
$|\\ln(2t\\lambda^*/\\ln 2)| \\le \\tfrac12\\ln b$ (proof in `spectral_jax.shells.frontier`).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.shells.frontier import Frontier, resolution_frontier
from spectral_jax.shells.windowed import windowed_budget


def _lazy_energy(shells, lam, eps, ts):
    member = np.asarray(shells.membership(jnp.asarray(lam)))
    return np.exp(-2.0 * np.outer(ts, lam)) * eps[None, :] @ member


def test_frontier_exact_at_shell_centres():
    shells = sj.LogShells(1.0, 2.0, 8)
    lam = np.repeat(np.asarray(shells.centers)[1:-1], 3)  # 3 degenerate modes per centre
    eps = np.random.default_rng(0).uniform(0.5, 2.0, size=lam.shape)
    ts = np.concatenate([[0.0], np.geomspace(0.4, 100.0, 40)])
    fr = resolution_frontier(shells, jnp.asarray(_lazy_energy(shells, lam, eps, ts)))
    assert isinstance(fr, Frontier)
    lazy = np.log(2.0) / (2.0 * ts[1:])
    inside = (lazy < lam.max()) & (lazy > lam.min())
    got = np.asarray(fr.eigenvalue)[1:]
    assert inside.sum() > 20
    np.testing.assert_allclose(got[inside], lazy[inside], rtol=1e-10)
    # outside the spectrum the frontier is undefined (NaN), never a wrong number
    assert np.all(np.isnan(got[lazy > 2 * lam.max()]))
    assert np.all(np.isnan(got[lazy < 0.5 * lam.min()]))
    np.testing.assert_allclose(
        np.asarray(fr.shell)[1:][inside], np.asarray(shells.position(jnp.asarray(lazy)))[inside],
        atol=1e-9,
    )


def test_fraction_nan_safe_and_shapes():
    shells = sj.LogShells(1.0, 2.0, 3)
    energy = jnp.asarray([[0.0, 2.0, 1.0, 0.0, 4.0], [0.0, 0.5, 0.9, 0.0, 4.0]])
    fr = resolution_frontier(shells, energy)
    assert fr.fraction.shape == (2, 5) and fr.shell.shape == (2,)
    f = np.asarray(fr.fraction)
    assert np.all(np.isnan(f[:, [0, 3]])) and np.all(np.isfinite(f[:, [1, 2, 4]]))
    np.testing.assert_allclose(f[1, [1, 2, 4]], [0.25, 0.9, 1.0])
    assert np.isnan(float(fr.shell[0]))  # nothing learned yet
    assert 1.0 < float(fr.shell[1]) < 2.0  # empty shell 0 skipped, crossing between 1 and 2
    with pytest.raises(ValueError, match="resolution_frontier"):
        resolution_frontier(shells, energy[:, :4])


@pytest.fixture(scope="module")
def frozen_run():
    n = 24
    k = np.arange(1, n + 1, dtype=np.float64)
    lam = k**-1.5
    e0 = k**-1.0
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    op = sj.FrozenOperator(jnp.asarray((q * lam[None, :]) @ q.T))
    shells = sj.LogShells.covering(lam[0], lam[-1], 2.0, margin=1.1)
    ts = jnp.concatenate([jnp.zeros(1), jnp.geomspace(0.1, 4.0 / lam[-1], 40)])
    budget = windowed_budget(shells, op, jnp.asarray(q @ e0), ts)
    return shells, lam, e0, np.asarray(ts), budget


def test_frozen_operator_zero_flux_and_lazy_frontier(frozen_run):
    shells, lam, e0, ts, budget = frozen_run
    total = float(budget.total_energy[0])
    # no transport at all: W = 0, so transfer and flux vanish identically
    assert float(jnp.max(jnp.abs(budget.transfer))) == 0.0
    assert float(jnp.max(jnp.abs(budget.instantaneous.flux))) == 0.0
    assert budget.crossings.count == 0
    assert budget.max_relative_residual <= 1e-6
    # energies against the closed form
    np.testing.assert_allclose(
        budget.energy, _lazy_energy(shells, lam, e0**2, ts), rtol=1e-7, atol=1e-9 * total
    )
    fr = resolution_frontier(shells, budget.energy)
    lazy = np.log(2.0) / (2.0 * ts[1:])
    # between the spectrum's ends (a shell of margin on either side)
    ratio = float(shells.ratio)
    inside = (lazy < lam[0] / ratio) & (lazy > lam[-1] * ratio)
    got = np.asarray(fr.eigenvalue)[1:][inside]
    assert inside.sum() >= 15 and np.all(np.isfinite(got))
    log_err = np.abs(np.log(got / lazy[inside]))
    assert np.max(log_err) <= 0.5 * np.log(ratio)
    # the frontier moves monotonically to smaller eigenvalues
    assert np.all(np.diff(np.asarray(fr.shell)[1:][inside]) > 0)


def test_plot_shell_dynamics(frozen_run, tmp_path):
    from spectral_jax.shells.plotting import plot_shell_dynamics

    shells, _, _, ts, budget = frozen_run
    path = tmp_path / "shells.png"
    fig = plot_shell_dynamics(ts, budget, shells, path=path, lazy_reference=True,
                              title="Frozen kernel")
    assert path.exists() and path.stat().st_size > 10_000
    # energy, flux and residual panels, two colour bars
    assert len(fig.axes) == 5
    # the claim with its number: the max residual of this very budget
    title = fig._suptitle.get_text()
    assert title.startswith("Frozen kernel\nmax budget residual")
    assert f"{budget.max_relative_residual:.1e}" in title
    # shell 0 is empty along the run (lam_ref = 1.1 λ_max): omitted and named
    heat = fig.axes[0]
    labels = [t.get_text() for t in heat.get_yticklabels()]
    assert "0" not in labels and labels[0] == "1"
    assert "omitted: 0" in heat.get_ylabel()
    legend = [t.get_text() for t in heat.get_legend().get_texts()]
    assert any("lazy" in x for x in legend)
    fig2 = plot_shell_dynamics(ts, budget.energy, shells)
    assert len(fig2.axes) == 2  # no flux given: heat map + colour bar
    assert not any("lazy" in t.get_text() for t in fig2.axes[0].get_legend().get_texts())
    assert "frontier at" in fig2._suptitle.get_text()
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)
