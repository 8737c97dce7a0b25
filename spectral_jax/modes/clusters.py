"""Clusters of nearly degenerate eigenvalues: one typed option, one definition.

A cluster is a maximal run of eigenvalues, in descending order, whose *adjacent* relative gaps
$(\\lambda_k - \\lambda_{k+1})/\\max|\\lambda|$ are at most `Clusters.relative_gap`. Clusters are
the connected components of "adjacent and close", so membership is transitive: a chain of
small gaps is one cluster even where its ends are far apart (docs/theory.md §2.2).

Inside a cluster the Kato coupling $G_{kj}/(\\lambda_k-\\lambda_j)$ is huge and ill-conditioned;
the solvers transport the cluster's eigenspace as one block instead (parallel transport), which
is exact whatever the threshold: the threshold only trades stiffness against how long modes are
treated as a block.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int


@dataclasses.dataclass(frozen=True)
class Clusters:
    """Which eigenvalues are transported together, resolved apart, and reported as degenerate.

    - `relative_gap`: adjacent relative gap at or below which eigenvalues are *transported* as
      one cluster during the integration (default by dtype: 1e-7 in float64, 1e-4 in float32,
      see `resolve`). Exact for any value; it only trades stiffness against block transport.
    - `output_gap`: adjacent relative gap at or below which the *saved* outputs treat
      eigenvalues as one (their eigenvectors are defined only to round-off there): the saved
      generator is 0 inside such a cluster and its basis takes the parallel-transport gauge.
      Above it every saved quantity is that of the true eigenbasis, so shell budgets built from
      the outputs see the full coupling of an avoided crossing. Default by dtype: 1e-10 in
      float64, 1e-5 in float32 (`resolve_output`).
    - `report_gap`: adjacent relative gap below which a pair is listed in
      `KatoSolution.degenerate_pairs` (a diagnostic only; it changes no number).
    """

    relative_gap: float | None = None
    output_gap: float | None = None
    report_gap: float = 1e-6

    def __post_init__(self):
        for name in ("relative_gap", "output_gap", "report_gap"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
                raise ValueError(f"Clusters.{name} must be a finite number >= 0, got {value!r}")

    def resolve(self, dtype) -> float:
        """The cluster threshold to use for arrays of `dtype`."""
        if self.relative_gap is not None:
            return float(self.relative_gap)
        return 1e-7 if np.finfo(dtype).bits >= 64 else 1e-4

    def resolve_output(self, dtype) -> float:
        """The output threshold to use for arrays of `dtype`."""
        if self.output_gap is not None:
            return float(self.output_gap)
        return 1e-10 if np.finfo(dtype).bits >= 64 else 1e-5


def cluster_labels(eigenvalues: Float[ArrayLike, " n"], relative_gap) -> Int[Array, " n"]:
    """Cluster index of each eigenvalue (eigenvalues sorted descending): connected components.

    O(n): a new cluster starts wherever an adjacent gap exceeds `relative_gap` × max|λ|.
    """
    scale = jnp.maximum(jnp.max(jnp.abs(eigenvalues)), jnp.finfo(eigenvalues.dtype).tiny)
    breaks = (eigenvalues[:-1] - eigenvalues[1:]) > relative_gap * scale
    return jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(breaks, dtype=jnp.int32)])


def same_cluster(eigenvalues: Float[ArrayLike, " n"], relative_gap) -> Bool[Array, "n n"]:
    """Pairs (k, j) in one cluster, the diagonal included (eigenvalues sorted descending)."""
    labels = cluster_labels(eigenvalues, relative_gap)
    return labels[:, None] == labels[None, :]
