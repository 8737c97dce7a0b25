"""`default_shells`: λ_ref above the spectrum and off its lattice (no eigenvalue on an edge)."""

import jax.numpy as jnp
import numpy as np
import pytest

from spectral_jax.networks import default_shells


def _edge_distance(lam, lam_ref, ratio, count):
    """Smallest |ln λ - ln edge| / ln b over eigenvalues above round-off and all edges."""
    edges = lam_ref * ratio ** -np.arange(count + 1.0)
    lam = lam[lam > 1e-12 * lam.max()]
    return np.min(np.abs(np.log(lam)[:, None] - np.log(edges)[None, :])) / np.log(ratio)


@pytest.mark.parametrize("ratio", [2.0, 4.0])
@pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0, 4.0])
def test_power_law_spectrum_stays_off_the_edges(exponent, ratio):
    n = 64
    lam = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    shells = default_shells(jnp.asarray(lam)[None, :], ratio)
    lam_ref = float(shells.lam_ref)
    assert lam_ref > lam[0]
    distance = _edge_distance(lam, lam_ref, ratio, shells.count)
    assert distance > 1e-6 and distance >= 1 / (2 * (n + 1))
    # The former choice λ_ref = λ_max put the top mode on an edge (distance 0); a fixed offset
    # b^{1/2} fails on some power laws, which is why the offset is chosen from the spectrum.
    assert _edge_distance(lam, lam[0], ratio, shells.count) == 0.0
    if exponent == 0.5 and ratio == 2.0:
        assert _edge_distance(lam, lam[0] * np.sqrt(ratio), ratio, shells.count) < 1e-12
    # Round-off does not move any mode between shells; shell 0 is empty, the top mode in 1.
    assigned = np.asarray(shells.assign(jnp.asarray(lam)))
    for factor in (1 - 1e-12, 1 + 1e-12):
        np.testing.assert_array_equal(np.asarray(shells.assign(jnp.asarray(lam * factor))),
                                      assigned)
    assert assigned[0] == 1 and np.all(assigned >= 1)
    assert assigned[-1] <= shells.count  # the smallest eigenvalue is inside an interior shell


def test_moving_spectrum_top_mode_in_shell_one():
    """A (T, n) record: λ_ref above the largest eigenvalue seen, which sits in shell 1."""
    ts = np.linspace(0.0, 1.0, 7)[:, None]
    lam = np.arange(1, 33, dtype=np.float64)[None, :] ** -(1.0 + ts) * (1.0 + 0.5 * ts)
    shells = default_shells(jnp.asarray(lam))
    assigned = np.asarray(shells.assign(jnp.asarray(lam)))
    assert np.all(assigned >= 1)
    top = np.unravel_index(np.argmax(lam), lam.shape)
    assert assigned[top] == 1
    assert _edge_distance(lam.ravel(), float(shells.lam_ref), 2.0, shells.count) > 1e-6


def test_explicit_count_and_errors():
    lam = jnp.asarray([[1.0, 0.3, 0.01]])
    assert default_shells(lam, 2.0, count=3).count == 3
    with pytest.raises(ValueError, match="no positive eigenvalue"):
        default_shells(jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="ratio"):
        default_shells(lam, 1.0)
    with pytest.raises(ValueError, match="NaN"):
        default_shells(lam.at[0, 1].set(jnp.nan))
