"""Clear errors for bad shell input, and the shared budget helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.shells.budget import net_inflow


@pytest.mark.parametrize("make", [np.asarray, jnp.asarray, np.float64])
def test_log_shells_accepts_0d_arrays(make):
    shells = sj.LogShells(make(2.0), make(3.0), 2)
    np.testing.assert_allclose(shells.edges, [2.0, 2.0 / 3, 2.0 / 9], rtol=1e-15)


def test_log_shells_rejects_arrays_with_a_clear_error():
    with pytest.raises(ValueError, match=r"lam_ref must be a scalar \(0-d\), got shape \(3,\)"):
        sj.LogShells(jnp.asarray([1.0, 0.5, 0.1]), 2.0, 3)
    with pytest.raises(ValueError, match=r"ratio must be a scalar"):
        sj.LogShells(1.0, np.asarray([2.0]), 3)
    with pytest.raises(ValueError, match="lam_ref must be finite and > 0"):
        sj.LogShells(jnp.asarray(np.nan), 2.0, 3)
    with pytest.raises(ValueError, match="ratio must be finite and > 1"):
        sj.LogShells(1.0, np.asarray(1.0), 3)
    with pytest.raises(TypeError, match="real number"):
        sj.LogShells(1.0 + 0j, 2.0, 3)
    # integers are promoted to floating point
    assert jnp.issubdtype(sj.LogShells(1, 2, 3).edges.dtype, jnp.floating)


def test_log_shells_vmap_over_lam_ref_skips_checks():
    edges = jax.vmap(lambda r: sj.LogShells(r, 2.0, 2).edges)(jnp.asarray([1.0, 4.0]))
    np.testing.assert_allclose(edges, [[1.0, 0.5, 0.25], [4.0, 2.0, 1.0]])


def test_from_spectrum_covers_the_spectrum_off_the_edges():
    lam = np.arange(1, 41, dtype=np.float64) ** -2.0
    lam = np.concatenate([lam, [0.0, 1e-17]])  # zero modes and round-off go to the tail
    shells = sj.LogShells.from_spectrum(lam, 2.0)
    idx = np.asarray(shells.assign(jnp.asarray(lam)))
    assert float(shells.lam_ref) == pytest.approx(1.1)
    assert idx[0] == 1 and np.all(idx[:40] <= shells.count)  # shell 0 empty, top off the edge
    assert np.all(idx[40:] == shells.count + 1)
    with pytest.raises(ValueError, match="no positive eigenvalue"):
        sj.LogShells.from_spectrum(np.zeros(3))


def _modes(rng, n=6, t=3):
    lam = np.sort(rng.uniform(0.01, 2.0, size=(t, n)), axis=-1)[..., ::-1].copy()
    c = rng.normal(size=(t, n))
    w = rng.normal(size=(t, n, n))
    return lam, c, w - np.swapaxes(w, -1, -2)


def test_shell_budget_rejects_nan_and_non_antisymmetric_generators(rng):
    shells = sj.LogShells(2.5, 2.0, 4)
    lam, c, w = _modes(rng)
    sj.shell_budget(shells, lam, c, w)  # valid
    bad = lam.copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"eigenvalues contains NaN .* index \[1, 4\]"):
        sj.shell_budget(shells, bad, c, w)
    bad = c.copy()
    bad[2, 0] = np.inf
    with pytest.raises(ValueError, match="coefficients contains NaN or Inf"):
        sj.shell_budget(shells, lam, bad, w)
    bad = w.copy()
    bad[0, 1, 3] += 1e-3
    with pytest.raises(ValueError, match=r"generator must be antisymmetric .* index \[0, 1, 3\]"):
        sj.shell_budget(shells, lam, c, bad)
    with pytest.raises(ValueError, match="antisymmetric"):
        sj.shell_budget(shells, lam, c, np.abs(w))  # symmetric, the sign convention dropped
    with pytest.raises(TypeError, match="LogShells"):
        sj.shell_budget(2.0, lam, c, w)


def test_shell_budget_checks_are_skipped_under_jit(rng):
    shells = sj.LogShells(2.5, 2.0, 4)
    lam, c, w = _modes(rng)
    w_bad = w + 1e-3  # not antisymmetric: no eager check inside jit, and no error
    jitted = jax.jit(lambda a, b, g: sj.shell_budget(shells, a, b, g).energy)
    np.testing.assert_allclose(
        jitted(lam, c, w_bad), sj.shell_budget(shells, lam, c, w).energy, rtol=1e-14
    )


def test_net_inflow_and_rate(rng):
    flux = rng.normal(size=(2, 4))
    got = np.asarray(net_inflow(jnp.asarray(flux)))
    want = np.zeros((2, 5))
    for s in range(5):
        want[:, s] = (flux[:, s - 1] if s > 0 else 0.0) - (flux[:, s] if s < 4 else 0.0)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    np.testing.assert_allclose(got.sum(axis=-1), 0.0, atol=1e-14)  # transport conserves energy
