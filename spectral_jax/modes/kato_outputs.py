"""What `solve_kato` keeps at each saved time, computed inside the solve (docs/theory.md §2.2).

At a saved time the tracked state (Φ, c) is re-expressed in the true eigenbasis of M(t), sorted
by descending eigenvalue: eigenvector signs follow the tracked frame and, only where eigenvalues
agree to round-off (`Clusters.output_gap`), the basis inside a cluster is the rotation closest to
the tracked frame (orthogonal Procrustes). The self-check's mismatch is measured here too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .clusters import same_cluster
from .kato_field import KatoState, cluster_generator, matmul_highest
from .spectral_state import eigh_descending

_HIGHEST = jax.lax.Precision.HIGHEST


class _Saved(NamedTuple):
    eigenvalues: Any
    coefficients: Any
    reference_coefficients: Any
    generator: Any
    frames: Any
    residuals: Any
    reduced: Any
    reduced_reference: Any
    eigenvalue_rates: Any
    order: Any
    mismatch: Any
    mismatch_mode: Any


def _labels(overlap):
    """Tracked label of each sorted eigenvector (largest overlap); identity if not a permutation."""
    n = overlap.shape[0]
    perm = jnp.argmax(jnp.abs(overlap), axis=1)
    is_perm = jnp.all(jnp.zeros(n, jnp.int32).at[perm].add(1) == 1)
    return jnp.where(is_perm, perm, jnp.arange(n))


def _gauge_rotation(matched_overlap, inside):
    """Block rotation Q maximising tr(Qᵀ B), B the overlap restricted to clusters (Procrustes).

    Without clusters this is the sign of each diagonal overlap (O(n²)); with clusters, one SVD.
    """
    n = matched_overlap.shape[0]
    has_cluster = jnp.any(inside & ~jnp.eye(n, dtype=bool))

    def signs(_):
        s = jnp.where(jnp.diagonal(matched_overlap) < 0, -1.0, 1.0)
        return jnp.diag(s.astype(matched_overlap.dtype))

    def procrustes(_):
        u, _, vh = jnp.linalg.svd(jnp.where(inside, matched_overlap, 0.0))
        return matmul_highest(u, vh)

    return jax.lax.cond(has_cluster, procrustes, signs, None)


def save_outputs(t, state: KatoState, args):
    op, output_gap, reduce, e0_norm = args
    m, dm = op.value_and_derivative(t)
    lam, vec = eigh_descending(m)
    overlap = matmul_highest(vec.T, state.frame)
    order = _labels(overlap)
    inside = same_cluster(lam, output_gap)
    q = _gauge_rotation(overlap[:, order], inside)
    frame = matmul_highest(vec, q)  # output basis: eigenvectors, gauge of the tracked frame
    g_eigen = matmul_highest(matmul_highest(vec.T, dm), vec)
    generator = matmul_highest(matmul_highest(q.T, cluster_generator(g_eigen, lam, output_gap)), q)
    rates = jnp.einsum("ik,ij,jk->k", q, g_eigen, q, precision=_HIGHEST)
    residual = matmul_highest(state.frame, state.coefficients)
    coefficients = matmul_highest(frame.T, residual)
    if state.reference is None:
        reference_coefficients, mismatch, mode = None, jnp.zeros((), lam.dtype), jnp.zeros(())
    else:
        reference_coefficients = matmul_highest(frame.T, state.reference)
        mismatch = jnp.linalg.norm(residual - state.reference) / e0_norm
        mode = jnp.argmax(jnp.abs(coefficients - reference_coefficients))
    if reduce is None:
        kept, reduced, reduced_ref = (generator, frame), None, None
    else:  # only the reduction leaves the solve: no (T, n, n) arrays are stored
        kept = (None, None)
        reduced = reduce(lam, coefficients, generator)
        reduced_ref = None
        if reference_coefficients is not None:
            reduced_ref = reduce(lam, reference_coefficients, generator)
    return _Saved(
        lam, coefficients, reference_coefficients, *kept, residual, reduced, reduced_ref, rates,
        # Indices travel as floats: see kato_solution.as_index.
        order.astype(lam.dtype), mismatch, jnp.asarray(mode, lam.dtype),
    )


