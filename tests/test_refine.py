"""Ogita–Aishima refinement of an approximate eigenbasis (spectral_jax/modes/refine.py).

Oracle: `numpy.linalg.eigh` of the perturbed matrix; the starting basis is the exact
eigenbasis of the unperturbed one (what the Kato solver's tracked frame is to M(t + h)).
Everything a test needs is computed by one jitted function (and its vmap), compiled once for the
module by the `compiled` fixture: op-by-op dispatch on a loaded 2-core machine costs seconds.
"""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from spectral_jax.modes.refine import (  # noqa: E402
    default_tolerance,
    eigh_refined_or_fallback,
    refine_eigenbasis,
)
from spectral_jax.modes.spectral_state import eigh_descending  # noqa: E402

N = 64


def _everything(a, x):
    return {
        "one": refine_eigenbasis(a, x, iterations=1),
        "two": refine_eigenbasis(a, x, iterations=2),
        "strict": refine_eigenbasis(a, x, tolerance=-1.0),
        "fallback": eigh_refined_or_fallback(a, x),
        "eigh": eigh_descending(a),
    }


_single = jax.jit(_everything)
_batched = jax.jit(jax.vmap(_everything))


@pytest.fixture(scope="module")
def run():
    """`run(a, x)` -> `_everything(a, x)`, compiled once here (module setup), not in each test."""
    eye = jnp.eye(N)
    jax.block_until_ready(_single(eye, eye))
    jax.block_until_ready(_batched(jnp.stack([eye] * 3), jnp.stack([eye] * 3)))
    return _single


def _perturbed(rng, eigenvalues, delta):
    """(A, Q): A = Q diag(λ) Qᵀ + δ E with ‖E‖₂ = 1, and the exact basis Q of the unperturbed."""
    n = eigenvalues.shape[0]
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    e = rng.standard_normal((n, n))
    e = (e + e.T) / 2
    a = (q * eigenvalues[None, :]) @ q.T + delta * e / np.linalg.norm(e, 2)
    return jnp.asarray((a + a.T) / 2), jnp.asarray(q)


def _separated():
    return np.linspace(2.0, 1.0, N)


def _power_law():
    return np.arange(1.0, N + 1.0) ** -2


def _assert_equal_up_to_sign(vectors, reference, atol):
    signs = np.sign(np.sum(np.asarray(vectors) * np.asarray(reference), axis=0))
    np.testing.assert_allclose(np.asarray(vectors) * signs[None, :], reference, atol=atol)


def _assert_is_numpy_eigh(a, lam, vec):
    exact_lam, exact_vec = np.linalg.eigh(np.asarray(a))
    np.testing.assert_allclose(lam, exact_lam[::-1], rtol=0, atol=1e-12)
    _assert_equal_up_to_sign(vec, exact_vec[:, ::-1], atol=1e-12)


def test_separated_spectrum_converges_quadratically_in_two_iterations(rng, run):
    a, q = _perturbed(rng, _separated(), 1e-5)
    out = run(a, q)
    one, two = out["one"], out["two"]
    assert 1e-12 < float(one.residual) < 1e-8  # one step: O(δ²/gap)
    assert float(two.residual) <= 1e-12 and float(two.orthogonality) <= 1e-12
    assert bool(two.converged) and not bool(two.clustered) and not bool(one.converged)
    exact_lam, exact_vec = np.linalg.eigh(np.asarray(a))
    np.testing.assert_allclose(two.eigenvalues, exact_lam[::-1], rtol=0, atol=1e-12)
    _assert_equal_up_to_sign(two.vectors, exact_vec[:, ::-1], atol=1e-10)  # eps / gap
    lam, vec, refined = out["fallback"]
    assert bool(refined)
    np.testing.assert_array_equal(lam, two.eigenvalues)
    np.testing.assert_array_equal(vec, two.vectors)


def test_columns_in_any_order_come_back_descending_with_their_signs(rng, run):
    a, q = _perturbed(rng, _separated(), 1e-5)
    perm = rng.permutation(N)
    flip = jnp.where(jnp.arange(N) % 2 == 0, 1.0, -1.0)
    basis = run(a, q[:, perm] * flip[None, :])["two"]
    plain = run(a, q)["two"]
    np.testing.assert_allclose(basis.eigenvalues, plain.eigenvalues, rtol=0, atol=1e-13)
    _assert_equal_up_to_sign(basis.vectors, plain.vectors, atol=1e-12)
    signs = np.sign(np.sum(np.asarray(basis.vectors) * np.asarray(plain.vectors), axis=0))
    np.testing.assert_array_equal(signs, np.asarray(flip)[np.argsort(perm)])


def test_power_law_spectrum_converges_at_small_perturbation(rng, run):
    a, q = _perturbed(rng, _power_law(), 1e-8)
    out = run(a, q)
    basis = out["two"]
    assert bool(basis.converged) and not bool(basis.clustered)
    exact = np.linalg.eigvalsh(np.asarray(a))[::-1]
    np.testing.assert_allclose(basis.eigenvalues, exact, rtol=0, atol=1e-12)
    assert bool(out["fallback"][2])


def test_power_law_tail_at_large_perturbation_is_clustered_and_falls_back(rng, run):
    a, q = _perturbed(rng, _power_law(), 1e-5)
    out = run(a, q)
    basis = out["two"]
    assert bool(basis.clustered) and not bool(basis.converged)
    assert not bool(basis.clustered_modes[0])  # the head (gap 0.75) is resolved
    assert bool(basis.clustered_modes[-1])  # the tail (gap 8e-6) is not
    lam, vec, refined = out["fallback"]
    assert not bool(refined)
    _assert_is_numpy_eigh(a, lam, vec)


def test_exact_degenerate_pair_is_clustered_and_falls_back(rng, run):
    eigenvalues = _separated()
    eigenvalues[10] = eigenvalues[11]
    a, q = _perturbed(rng, eigenvalues, 0.0)
    start = q + 1e-9 * jnp.asarray(rng.standard_normal((N, N)))
    out = run(a, start)
    basis = out["two"]
    assert bool(basis.clustered)
    assert np.flatnonzero(np.asarray(basis.clustered_modes)).tolist() == [10, 11]
    lam, vec, refined = out["fallback"]
    assert not bool(refined)
    np.testing.assert_array_equal(lam, out["eigh"][0])  # the pair's basis is eigh's own
    np.testing.assert_array_equal(vec, out["eigh"][1])


def test_random_starting_basis_is_not_converged_and_falls_back(rng, run):
    a, _ = _perturbed(rng, _separated(), 1e-5)
    bad, _ = np.linalg.qr(rng.standard_normal((N, N)))
    out = run(a, jnp.asarray(bad))
    assert not bool(out["two"].converged)
    assert not float(out["two"].residual) <= 1e-3  # also covers NaN
    lam, vec, refined = out["fallback"]
    assert not bool(refined)
    _assert_is_numpy_eigh(a, lam, vec)


def test_vmap_over_a_batch_matches_the_unbatched_calls(rng, run):
    good = [_perturbed(rng, _separated(), 1e-5), _perturbed(rng, _power_law(), 1e-8)]
    bad_a, _ = _perturbed(rng, _separated(), 1e-5)
    bad_q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    mats = jnp.stack([g[0] for g in good] + [bad_a])
    bases = jnp.stack([g[1] for g in good] + [jnp.asarray(bad_q)])
    batched = _batched(mats, bases)
    lam, vec, refined = batched["fallback"]
    np.testing.assert_array_equal(refined, [True, True, False])
    assert batched["two"].eigenvalues.shape == (3, N) and batched["two"].converged.shape == (3,)
    for k in range(3):
        lam_k, vec_k, _ = run(mats[k], bases[k])["fallback"]
        np.testing.assert_allclose(lam[k], lam_k, rtol=0, atol=1e-13)
        _assert_equal_up_to_sign(vec[k], vec_k, atol=1e-11)


def test_tolerance_and_iterations_arguments(rng, run):
    assert default_tolerance(64, jnp.float64) == pytest.approx(100 * 64 * 2.220446049250313e-16)
    a, q = _perturbed(rng, _separated(), 1e-5)
    out = run(a, q)
    assert bool(out["two"].converged) and not bool(out["strict"].converged)
    with pytest.raises(ValueError, match="iterations"):
        refine_eigenbasis(jnp.eye(3), jnp.eye(3), iterations=0)
