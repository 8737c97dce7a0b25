"""Eigh-free refinement of an approximate eigenbasis by matrix products (Ogita–Aishima).

Why: the Kato solver calls `eigh(M(t))` at every right-hand side although the frame it tracks is
already a near-eigenbasis of $M(t)$. One refinement step from that frame costs four n×n products
(no LAPACK eigensolver) and converges quadratically while the eigenvalues are separated, so two
steps from an $O(10^{-5})$-accurate basis reach working precision.

Reference: T. Ogita, K. Aishima, "Iterative refinement for symmetric eigenvalue decomposition",
Japan J. Indust. Appl. Math. 35 (2018) 1007–1035, Algorithm 1 (RefSyEv); part II, "... II:
clustered eigenvalues", JJIAM 36 (2019) 435–459. One step, for symmetric $A$ and $X \\approx V$:

    R = I − XᵀX,   S = XᵀAX,   λ̃_i = s_ii / (1 − r_ii),   D = diag(λ̃),
    δ = 2 (‖S − D‖₂ + ‖A‖₂ ‖R‖₂),
    ẽ_ij = (s_ij + λ̃_j r_ij) / (λ̃_j − λ̃_i)   if |λ̃_i − λ̃_j| > δ,   else r_ij / 2,
    X ← X + X Ẽ.

Checked against the derivation ($X' = X(I + E)$ with $X'^TX' = I$ and $X'^TAX' = D$ to first
order: $e_{ij} + e_{ji} = r_{ij}$ and $s_{ij} + \\lambda_i e_{ij} + \\lambda_j e_{ji} = 0$ off
the diagonal; $e_{ii} = r_{ii}/2$, $\\lambda_i(1 - r_{ii}) = s_{ii}$ on it): the formulas above
are the paper's. Deviations: R and S are symmetrised ((B + Bᵀ)/2, exact in exact arithmetic);
otherwise $e_{ij} + e_{ji} = r_{ij} + (s_{ij} - s_{ji})/(\\lambda_j - \\lambda_i)$ and the
rounding asymmetry of the computed S, amplified by 1/gap, stalls ‖I − XᵀX‖ near eps/gap (seen:
2e-12 on a k⁻² spectrum at n = 64; 3e-15 once symmetrised). The 2-norms are replaced by
min(Frobenius, √(‖·‖₁‖·‖∞)), both upper bounds, so δ can only grow (more pairs treated as
clustered: safe). Clusters (pairs within δ) get only the orthonormalising $r_{ij}/2$; part II's
treatment (an eigh of each cluster block) needs data-dependent shapes, so here a cluster is
*flagged* and `eigh_refined_or_fallback` falls back to `eigh`.

Convergence tolerance (`converged`): residual ‖AX − XΛ‖_F/‖A‖_F and orthogonality ‖I − XᵀX‖_F
both ≤ 100·n·eps(dtype) (1.4e-12 at n = 64, 2.3e-11 at n = 1024 in float64). A residual at that
level makes X an exact eigenbasis of a matrix within that relative distance of A — the backward
error `eigh` itself guarantees — whatever the gaps.

Measured (benchmarks/refine.md, 2-core CPU, float64, n = 512 / 1024): `eigh` costs about 6 / 4
n×n products there, so refine ×2 (10 products) is 2.4–3.7× slower than `eigh` even when it
converges, and on a k⁻² spectrum (δ = 1e-5 and 1e-8) ~97% of the modes are clustered (tail gaps
2/k³ below δ; pairs just above δ get O(1) Newton angles, which inflate ‖R‖ and with it the next
δ), so it falls back. A gain needs a device where `eigh` is dear relative to GEMM (GPU).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float

from .spectral_state import eigh_descending

__all__ = ["RefinedBasis", "refine_eigenbasis", "eigh_refined_or_fallback", "default_tolerance"]


class RefinedBasis(eqx.Module):
    """A refined eigenbasis (eigenvalues descending) and its own a-posteriori diagnostics."""

    eigenvalues: Float[Array, " n"]  # Rayleigh quotients of the refined columns, descending
    vectors: Float[Array, "n n"]  # columns, in the order of `eigenvalues`
    residual: Float[Array, ""]  # ‖AX − XΛ‖_F / ‖A‖_F
    orthogonality: Float[Array, ""]  # ‖I − XᵀX‖_F
    converged: Bool[Array, ""]  # residual and orthogonality ≤ tolerance
    clustered: Bool[Array, ""]  # some pair fell within δ in the last iteration
    clustered_modes: Bool[Array, " n"]  # per mode (order of `eigenvalues`): within δ of another


def default_tolerance(n: int, dtype) -> float:
    """100·n·eps: the bound on residual and orthogonality for `converged`."""
    return 100.0 * n * float(jnp.finfo(dtype).eps)


def _mm(a: Array, b: Array) -> Array:
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _symmetric(b: Array) -> Array:
    return (b + b.T) / 2


def _norm2_bound(b: Array) -> Array:
    """An upper bound of ‖b‖₂: min(‖b‖_F, √(‖b‖₁‖b‖∞)), O(n²)."""
    fro = jnp.sqrt(jnp.sum(b * b))
    one = jnp.max(jnp.sum(jnp.abs(b), axis=0))
    inf = jnp.max(jnp.sum(jnp.abs(b), axis=1))
    return jnp.minimum(fro, jnp.sqrt(one * inf))


def _step(a: Array, x: Array, a_norm: Array) -> tuple[Array, Array]:
    """One RefSyEv iteration: the refined X and, per mode, whether it met another within δ."""
    off_diagonal = ~jnp.eye(x.shape[-1], dtype=bool)
    r = jnp.eye(x.shape[-1], dtype=x.dtype) - _symmetric(_mm(x.T, x))
    s = _symmetric(_mm(x.T, _mm(a, x)))
    lam = jnp.diagonal(s) / (1 - jnp.diagonal(r))
    delta = 2 * (_norm2_bound(s - jnp.diag(lam)) + a_norm * _norm2_bound(r))
    gap = lam[None, :] - lam[:, None]  # (i, j) -> λ̃_j − λ̃_i
    separated = jnp.abs(gap) > delta
    newton = (s + lam[None, :] * r) / jnp.where(separated, gap, 1)
    e = jnp.where(separated, newton, r / 2)
    return x + _mm(x, e), jnp.any(~separated & off_diagonal, axis=1)


def refine_eigenbasis(
    matrix: Float[ArrayLike, "n n"],
    approx_vectors: Float[ArrayLike, "n n"],
    *,
    iterations: int = 2,
    tolerance: float | None = None,
) -> RefinedBasis:
    """Refine the columns of `approx_vectors` towards eigenvectors of the symmetric `matrix`.

    Pure; jit with `iterations` (and `tolerance`) static; vmappable. The columns may come in
    any order: the result is sorted descending like `spectral_state.eigh_descending`, with the
    input's signs kept. Costs 4·`iterations` + 2 n×n products (the last two for the
    diagnostics). `tolerance` defaults to `default_tolerance(n, dtype)`.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    a = jnp.asarray(matrix)
    x = jnp.asarray(approx_vectors).astype(a.dtype)
    n = a.shape[-1]
    tol = default_tolerance(n, a.dtype) if tolerance is None else tolerance
    a_norm = _norm2_bound(a)
    clustered_modes = jnp.zeros(n, dtype=bool)
    for _ in range(iterations):
        x, clustered_modes = _step(a, x, a_norm)
    ax = _mm(a, x)
    gram = _mm(x.T, x)
    lam = jnp.sum(x * ax, axis=0) / jnp.diagonal(gram)
    order = jnp.argsort(-lam)
    lam, x, ax, clustered_modes = lam[order], x[:, order], ax[:, order], clustered_modes[order]
    a_fro = jnp.sqrt(jnp.sum(a * a))
    tiny = jnp.finfo(a.dtype).tiny
    residual = jnp.sqrt(jnp.sum((ax - x * lam[None, :]) ** 2)) / jnp.maximum(a_fro, tiny)
    orthogonality = jnp.sqrt(jnp.sum((jnp.eye(n, dtype=a.dtype) - gram) ** 2))
    return RefinedBasis(
        eigenvalues=lam,
        vectors=x,
        residual=residual,
        orthogonality=orthogonality,
        converged=(residual <= tol) & (orthogonality <= tol),
        clustered=jnp.any(clustered_modes),
        clustered_modes=clustered_modes,
    )


def eigh_refined_or_fallback(
    matrix: Float[ArrayLike, "n n"],
    approx_vectors: Float[ArrayLike, "n n"],
    *,
    iterations: int = 2,
    tolerance: float | None = None,
) -> tuple[Float[Array, " n"], Float[Array, "n n"], Bool[Array, ""]]:
    """`(eigenvalues, vectors, refined)`: the refinement if converged and unclustered, else eigh.

    The fallback is `eigh_descending(matrix)` inside `jax.lax.cond`, so it costs nothing when
    not taken — unbatched only: under `vmap` the cond becomes a select and both branches run
    (there the eigh is always paid). `refined` says which branch was taken.
    """
    a = jnp.asarray(matrix)
    basis = refine_eigenbasis(a, approx_vectors, iterations=iterations, tolerance=tolerance)
    use = basis.converged & ~basis.clustered
    lam, vec = jax.lax.cond(
        use, lambda: (basis.eigenvalues, basis.vectors), lambda: eigh_descending(a)
    )
    return lam, vec, use
