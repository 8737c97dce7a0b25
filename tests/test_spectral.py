"""The spectral state: eigenpairs, gauge, frame alignment, Kato generator (docs/theory.md §2.2).

Oracles: `numpy.linalg.eigh` / `eigvalsh`, central finite differences of eigenvalues
(Hellmann–Feynman) and of aligned eigenvectors ($\\dot\\Phi = -\\Phi W$).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import spectral_jax as sj
from spectral_jax.modes.spectral_state import (
    align_frame,
    degenerate_mask,
    eigh_descending,
    fix_gauge,
    kato_generator,
    spectral_state,
)

RTOL_DEG = 1e-10


def _random_orthogonal(rng, n):
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))[None, :]


def _matrix_with_spectrum(rng, lam):
    q = _random_orthogonal(rng, len(lam))
    m = (q * np.asarray(lam)[None, :]) @ q.T
    return 0.5 * (m + m.T), q


def _sym(rng, n):
    b = rng.normal(size=(n, n))
    return 0.5 * (b + b.T)


@pytest.fixture
def smooth_operator():
    """M(t) = (B0 + t B1)(B0 + t B1)^T / n + 0.1 I: distinct, moving eigenvalues."""
    rng = np.random.default_rng(4)
    n = 6
    b0, b1 = jnp.asarray(rng.normal(size=(n, n))), jnp.asarray(rng.normal(size=(n, n)))

    def fn(t):
        b = b0 + t * b1
        return b @ b.T / n + 0.1 * jnp.eye(n, dtype=b.dtype)

    return sj.CallableOperator(fn)


def test_eigh_descending_matches_numpy():
    rng = np.random.default_rng(0)
    m = _sym(rng, 7)
    lam, vec = eigh_descending(jnp.asarray(m))
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(m)[::-1], rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(np.asarray(lam)) <= 0)
    np.testing.assert_allclose(np.asarray(vec) @ np.diag(lam) @ np.asarray(vec).T, m, atol=1e-12)


def test_fix_gauge_is_deterministic():
    rng = np.random.default_rng(1)
    q = _random_orthogonal(rng, 5)
    flipped = q * np.array([1.0, -1.0, -1.0, 1.0, -1.0])[None, :]
    a, b = fix_gauge(jnp.asarray(q)), fix_gauge(jnp.asarray(flipped))
    np.testing.assert_array_equal(a, b)
    idx = np.argmax(np.abs(np.asarray(a)), axis=0)
    assert np.all(np.asarray(a)[idx, np.arange(5)] > 0)
    np.testing.assert_array_equal(fix_gauge(a), a)


def test_align_frame_fixes_signs():
    rng = np.random.default_rng(2)
    lam = jnp.asarray([3.0, 2.0, 1.0, 0.5])
    ref = _random_orthogonal(rng, 4)
    signs = np.array([-1.0, 1.0, -1.0, -1.0])
    out_lam, out = align_frame(lam, jnp.asarray(ref * signs[None, :]), jnp.asarray(ref), RTOL_DEG)
    np.testing.assert_allclose(out, ref, atol=1e-15)
    np.testing.assert_array_equal(out_lam, lam)


def test_align_frame_restores_labels_after_a_crossing():
    """eigh sorts; after two eigenvalues cross, the fresh columns come in swapped order."""
    rng = np.random.default_rng(3)
    ref = _random_orthogonal(rng, 5)
    tracked_lam = np.array([3.0, 2.0, 1.0, 1.2, 0.1])  # labels 2 and 3 have crossed
    order = np.argsort(-tracked_lam)
    fresh_lam, fresh = tracked_lam[order], (ref * np.array([1, -1, 1, -1, 1.0])[None, :])[:, order]
    out_lam, out = align_frame(
        jnp.asarray(fresh_lam), jnp.asarray(fresh), jnp.asarray(ref), RTOL_DEG
    )
    np.testing.assert_allclose(out_lam, tracked_lam)
    np.testing.assert_allclose(out, ref, atol=1e-14)


def test_align_frame_degenerate_cluster_is_closest_rotation():
    """Inside an exactly degenerate pair eigh's basis is arbitrary; alignment returns the
    rotation of it closest to the reference (here: the reference itself)."""
    rng = np.random.default_rng(5)
    lam = np.array([2.0, 1.0, 1.0, 0.3])
    m, q = _matrix_with_spectrum(rng, lam)
    fresh_lam, fresh = eigh_descending(jnp.asarray(m))
    theta = 0.4
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    ref = q.copy()
    ref[:, 1:3] = q[:, 1:3] @ rot  # another basis of the same degenerate plane
    out_lam, out = align_frame(fresh_lam, fresh, jnp.asarray(ref), RTOL_DEG)
    np.testing.assert_allclose(out, ref, atol=1e-10)
    np.testing.assert_allclose(out_lam, lam, atol=1e-12)


def test_degenerate_mask():
    lam = jnp.asarray([2.0, 1.0, 1.0 + 1e-13, 0.5])
    mask = np.asarray(degenerate_mask(lam, RTOL_DEG))
    expected = np.zeros((4, 4), bool)
    expected[1, 2] = expected[2, 1] = True
    np.testing.assert_array_equal(mask, expected)


def test_kato_generator_formula():
    rng = np.random.default_rng(6)
    lam = np.array([4.0, 2.5, 1.0, 1.0, 0.2])  # one exact degeneracy (2, 3)
    g = _sym(rng, 5)
    w = np.asarray(kato_generator(jnp.asarray(g), jnp.asarray(lam), RTOL_DEG))
    np.testing.assert_allclose(w, -w.T, atol=0)  # exactly antisymmetric
    for k in range(5):
        for j in range(5):
            if k == j or {k, j} == {2, 3}:
                assert w[k, j] == 0.0
            else:
                np.testing.assert_allclose(w[k, j], g[k, j] / (lam[k] - lam[j]), rtol=1e-14)


def test_spectral_state_against_numpy(smooth_operator):
    m, dm = smooth_operator.value_and_derivative(0.4)
    s = spectral_state(m, dm)
    m_np, dm_np = np.asarray(m), np.asarray(dm)
    np.testing.assert_allclose(s.eigenvalues, np.linalg.eigvalsh(m_np)[::-1], rtol=1e-12)
    phi = np.asarray(s.frame)
    np.testing.assert_allclose(phi.T @ phi, np.eye(6), atol=1e-13)
    g = phi.T @ dm_np @ phi
    np.testing.assert_allclose(s.projected_derivative, g, atol=1e-12)
    lam = np.asarray(s.eigenvalues)
    off = ~np.eye(6, dtype=bool)
    w = np.zeros((6, 6))
    w[off] = (g / (lam[:, None] - lam[None, :] + np.eye(6)))[off]
    np.testing.assert_allclose(s.generator, w, rtol=1e-10, atol=1e-12)


def test_hellmann_feynman_matches_finite_difference(smooth_operator):
    h = 1e-5
    for t in (0.0, 0.37, 1.3):
        m, dm = smooth_operator.value_and_derivative(t)
        rates = np.asarray(spectral_state(m, dm).eigenvalue_rates)

        def eig(tt):
            return np.linalg.eigvalsh(np.asarray(smooth_operator(tt)))[::-1]

        fd = (eig(t + h) - eig(t - h)) / (2 * h)
        np.testing.assert_allclose(rates, fd, rtol=1e-7, atol=1e-9)
        assert np.max(np.abs(rates)) > 0.1  # the eigenvalues do move


def test_frame_derivative_is_minus_phi_w(smooth_operator):
    """dΦ/dt = −Φ W (docs/theory.md §2.2), by central differences of aligned eigenvectors."""
    # Modes 5 and 6 are 0.0046 apart (W ~ 10): truncation ~2e-3·h², round-off ~eps/(gap·h).
    t, h = 0.5, 2e-6
    m, dm = smooth_operator.value_and_derivative(t)
    s = spectral_state(m, dm)

    def frame_at(tt):
        mm, dd = smooth_operator.value_and_derivative(tt)
        return np.asarray(spectral_state(mm, dd, s.frame).frame)

    fd = (frame_at(t + h) - frame_at(t - h)) / (2 * h)
    np.testing.assert_allclose(
        fd, -np.asarray(s.frame) @ np.asarray(s.generator), rtol=1e-6, atol=1e-7
    )
    # Parallel transport: φ_k · dφ_k/dt = 0.
    np.testing.assert_allclose(np.einsum("ik,ik->k", np.asarray(s.frame), fd), 0.0, atol=1e-7)


def test_spectral_state_is_vmappable_over_time(smooth_operator):
    ts = jnp.linspace(0.0, 1.0, 5)
    ms, dms = jax.vmap(smooth_operator.value_and_derivative)(ts)
    batched = jax.jit(jax.vmap(spectral_state))(ms, dms)
    assert batched.eigenvalues.shape == (5, 6) and batched.generator.shape == (5, 6, 6)
    assert batched.eigenvalue_rates.shape == (5, 6)
    for i in range(5):
        one = spectral_state(ms[i], dms[i])
        np.testing.assert_allclose(batched.eigenvalues[i], one.eigenvalues, rtol=1e-13)
        np.testing.assert_allclose(batched.generator[i], one.generator, rtol=1e-9, atol=1e-12)
    # With a reference frame (the lax.cond path) too.
    refs = batched.frame
    aligned = jax.jit(jax.vmap(spectral_state))(ms, dms, refs)
    np.testing.assert_allclose(aligned.frame, refs, atol=1e-12)


def test_degenerate_state_has_finite_generator():
    rng = np.random.default_rng(8)
    m, _ = _matrix_with_spectrum(rng, np.array([1.0, 0.5, 0.5, 0.1]))
    dm = _sym(rng, 4)
    s = spectral_state(jnp.asarray(m), jnp.asarray(dm))
    w = np.asarray(s.generator)
    assert np.all(np.isfinite(w))
    assert w[1, 2] == 0.0 and w[2, 1] == 0.0


def test_degenerate_mask_is_transitive_in_any_order():
    """A chain of small adjacent gaps is one cluster even where its ends are far apart."""
    lam = np.array([1.0, 1.0 - 0.6e-7, 1.0 - 1.2e-7, 1.0 - 1.8e-7, 0.5])
    expected = np.zeros((5, 5), bool)
    expected[:4, :4] = True
    np.fill_diagonal(expected, False)
    np.testing.assert_array_equal(np.asarray(degenerate_mask(jnp.asarray(lam), 1e-7)), expected)
    perm = np.array([3, 0, 4, 2, 1])
    shuffled = np.asarray(degenerate_mask(jnp.asarray(lam[perm]), 1e-7))
    np.testing.assert_array_equal(shuffled, expected[np.ix_(perm, perm)])
