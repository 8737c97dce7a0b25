"""The instantaneous spectral state of $M(t)$: eigenpairs, frame continuity, Kato generator.

All functions are pure and vmappable over a leading time axis (use `jax.vmap`).

Conventions (docs/theory.md §2.2): eigenvalues descending, $G = \\Phi^T \\dot M \\Phi$,
$W_{kj} = G_{kj}/(\\lambda_k - \\lambda_j)$ for $k \\ne j$, $W_{kk} = 0$,
$\\dot\\lambda_k = G_{kk}$, $\\dot\\Phi = -\\Phi W$, $\\dot c = (W - \\Lambda) c$.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .clusters import cluster_labels

__all__ = [
    "SpectralState",
    "eigh_descending",
    "fix_gauge",
    "align_frame",
    "degenerate_mask",
    "kato_generator",
    "spectral_state",
    "default_degenerate_gap",
    "cluster_alignment",
]


def default_degenerate_gap(dtype) -> float:
    """Relative gap below which two eigenvalues are treated as one degenerate cluster."""
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-5


class SpectralState(eqx.Module):
    """Eigen-decomposition of $M$ with the Kato quantities built from $\\dot M$."""

    eigenvalues: Float[Array, " n"]
    frame: Float[Array, "n n"]  # columns φ_k
    projected_derivative: Float[Array, "n n"]  # G = Φ^T Ṁ Φ
    generator: Float[Array, "n n"]  # W (antisymmetric)

    @property
    def eigenvalue_rates(self) -> Float[Array, "*T n"]:  # *T: a vmapped state
        """$\\dot\\lambda_k = G_{kk}$ (Hellmann–Feynman)."""
        return jnp.diagonal(self.projected_derivative, axis1=-2, axis2=-1)


def eigh_descending(
    matrix: Float[ArrayLike, "n n"],
) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    lam, vec = jnp.linalg.eigh(matrix)
    return lam[::-1], vec[:, ::-1]


def fix_gauge(frame: Float[ArrayLike, "n n"]) -> Float[Array, "n n"]:
    """Deterministic starting signs: the largest-magnitude entry of each column is positive."""
    idx = jnp.argmax(jnp.abs(frame), axis=0)
    signs = jnp.sign(frame[idx, jnp.arange(frame.shape[1])])
    return frame * jnp.where(signs == 0, 1.0, signs).astype(frame.dtype)[None, :]


def degenerate_mask(eigenvalues: Float[ArrayLike, " n"], relative_gap: float) -> Bool[Array, "n n"]:
    """Off-diagonal pairs in one cluster: connected by adjacent gaps ≤ `relative_gap` × max|λ|.

    Transitive (see `clusters.cluster_labels`); the eigenvalues may come in any order.
    """
    order = jnp.argsort(-eigenvalues)
    sorted_labels = cluster_labels(eigenvalues[order], relative_gap).astype(order.dtype)
    labels = jnp.zeros_like(order).at[order].set(sorted_labels)
    return (labels[:, None] == labels[None, :]) & ~jnp.eye(eigenvalues.shape[0], dtype=bool)


def align_frame(
    eigenvalues: Float[ArrayLike, " n"],
    frame: Float[ArrayLike, "n n"],
    reference: Float[ArrayLike, "n n"],
    relative_gap: float,
) -> tuple[Float[Array, " n"], Float[Array, "n n"]]:
    """Order and orient a fresh eigenbasis to continue `reference` (the previous frame).

    The cheap path (every column overlaps its reference column by > 1/2, no degenerate pair)
    only fixes signs, O(n²). Otherwise one overlap matrix $O = \\Phi_\\text{ref}^T V$ gives the
    permutation (modes that crossed keep their labels) and, inside clusters of degenerate
    eigenvalues, the rotation closest to the reference (orthogonal Procrustes), which is the
    parallel-transport gauge for a degenerate subspace.

    Returns eigenvalues and frame in the reference's column order.
    """
    diag_overlap = jnp.sum(reference * frame, axis=0)
    clusters = degenerate_mask(eigenvalues, relative_gap)
    easy = jnp.all(jnp.abs(diag_overlap) > 0.5) & ~jnp.any(clusters)

    def signs_only(_):
        signs = jnp.where(diag_overlap < 0, -1.0, 1.0).astype(frame.dtype)
        return eigenvalues, frame * signs[None, :]

    def full(_):
        lam, vec, rotation = cluster_alignment(eigenvalues, frame, reference, relative_gap)
        return lam, vec @ rotation

    return jax.lax.cond(easy, signs_only, full, None)


def cluster_alignment(
    eigenvalues: Float[ArrayLike, " n"],
    frame: Float[ArrayLike, "n n"],
    reference: Float[ArrayLike, "n n"],
    relative_gap: float,
) -> tuple[Float[Array, " n"], Float[Array, "n n"], Float[Array, "n n"]]:
    """Eigenbasis in the reference's labels, plus the rotation inside clusters.

    Returns `(eigenvalues, eigenvectors, rotation)`, columns in the reference's order, such
    that `eigenvectors @ rotation` is the orthonormal basis closest to `reference` among those
    spanning the same clusters of eigenspaces (orthogonal Procrustes, block-diagonal over
    clusters of pairs closer than `relative_gap` × max|λ|). Signs of the eigenvectors make
    `diag(rotation) ≥ 0`. Always takes the O(n³) path (overlap matrix and SVD).
    """
    n = eigenvalues.shape[0]
    overlap = reference.T @ frame  # O[i, j] = φ_ref_i · v_j
    perm = jnp.argmax(jnp.abs(overlap), axis=1)
    is_perm = jnp.all(jnp.zeros(n, jnp.int32).at[perm].add(1) == 1)
    perm = jnp.where(is_perm, perm, jnp.arange(n))
    lam, vec = eigenvalues[perm], frame[:, perm]
    keep = degenerate_mask(lam, relative_gap) | jnp.eye(n, dtype=bool)
    block = jnp.where(keep, overlap[:, perm], 0.0)
    # max tr(O_b Q) over block-orthogonal Q: Q = (U Vh)^T with O_b = U S Vh.
    u, _, vh = jnp.linalg.svd(block)
    rotation = (u @ vh).T
    signs = jnp.where(jnp.diagonal(rotation) < 0, -1.0, 1.0).astype(frame.dtype)
    return lam, vec * signs[None, :], rotation * signs[:, None]


def kato_generator(
    projected_derivative: Float[ArrayLike, "n n"],
    eigenvalues: Float[ArrayLike, " n"],
    relative_gap: float,
) -> Float[Array, "n n"]:
    """$W_{kj} = G_{kj}/(\\lambda_k - \\lambda_j)$, exactly antisymmetric.

    Pairs inside a degenerate cluster get $W_{kj} = 0$: the parallel-transport gauge of the
    cluster's subspace. Any rotation inside it leaves every shell energy unchanged.
    """
    g = 0.5 * (projected_derivative + projected_derivative.T)  # exact symmetry → exact W = -W^T
    gaps = eigenvalues[:, None] - eigenvalues[None, :]
    skip = degenerate_mask(eigenvalues, relative_gap) | jnp.eye(eigenvalues.shape[0], dtype=bool)
    return jnp.where(skip, 0.0, g / jnp.where(skip, 1.0, gaps)).astype(g.dtype)


def spectral_state(
    matrix: Float[ArrayLike, "n n"],
    derivative: Float[ArrayLike, "n n"],
    reference: Float[ArrayLike, "n n"] | None = None,
    *,
    relative_gap: float | None = None,
) -> SpectralState:
    """From $(M, \\dot M)$ to eigenvalues, frame, $G$ and $W$.

    Without `reference` the eigenvalues are descending and the frame has the gauge of
    `fix_gauge`; with it, the frame continues `reference` (see `align_frame`).
    """
    relative_gap = default_degenerate_gap(matrix.dtype) if relative_gap is None else relative_gap
    lam, vec = eigh_descending(matrix)
    if reference is None:
        vec = fix_gauge(vec)
    else:
        lam, vec = align_frame(lam, vec, reference, relative_gap)
    g = vec.T @ derivative @ vec
    return SpectralState(lam, vec, g, kato_generator(g, lam, relative_gap))
