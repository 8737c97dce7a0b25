"""Operators whose spectra are hard on eigenbasis methods: the adversarial test bench.

Real kernels have dense tails, clusters, avoided crossings and exact zero modes. These small
operators reproduce each on its own, so that a solver (ours, or a user's pipeline) can be
checked against an independent integration of $\\dot e = -Me$ where it matters
(`tests/test_kato_exactness.py`, `scripts/bench_exactness.py`). A dense power-law tail is
`RotatingPowerLaw` with $\\lambda_k = k^{-\\alpha}$.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

from .base import AbstractOperator

__all__ = ["AvoidedCrossings", "LowRankFeatures", "SplittingCluster", "BreathingRBF"]


class AvoidedCrossings(AbstractOperator):
    """$U D(t) U^T$: m pairs of eigenvalues passing each other with minimal gap $2g_i$.

    Pair i is the block $[[3+i+(t-c_i), g_i], [g_i, 3+i-(t-c_i)]]$ (it crosses at $t = c_i$);
    the remaining eigenvalues are the constant `spectators`. `rotation` (n × n, orthogonal)
    hides the structure from the solver.
    """

    rotation: Float[Array, "n n"]
    centres: Float[Array, " m"]
    couplings: Float[Array, " m"]
    spectators: Float[Array, " k"]

    def __call__(self, t):
        s = t - self.centres
        d = jnp.zeros(self.rotation.shape, self.rotation.dtype)
        for i in range(self.centres.shape[0]):
            g = self.couplings[i]
            block = jnp.stack([jnp.stack([3.0 + i + s[i], g]), jnp.stack([g, 3.0 + i - s[i]])])
            d = d.at[2 * i : 2 * i + 2, 2 * i : 2 * i + 2].set(block)
        k = 2 * self.centres.shape[0]
        d = d.at[k:, k:].set(jnp.diag(self.spectators))
        return self.rotation @ d @ self.rotation.T

    @property
    def dtype(self):
        return self.rotation.dtype


class LowRankFeatures(AbstractOperator):
    """$M(t) = Z(t)Z(t)^T/p$ with $Z(t) = Z_0 + tZ_1$ (n × p): n − p exact zero modes if p < n.

    The kernel of random features of width p on n points whose features move linearly in time:
    the double-descent regime, where a large cluster of zero eigenvalues lasts the whole run.
    """

    features: Float[Array, "n p"]
    velocity: Float[Array, "n p"]

    def __call__(self, t):
        z = self.features + t * self.velocity
        return z @ z.T / self.features.shape[1]

    @property
    def dtype(self):
        return self.features.dtype


class SplittingCluster(AbstractOperator):
    """$R(t)\\,\\mathrm{diag}(\\lambda(t))R(t)^T$, $\\lambda(t) = b + (t-1)^2 s$, $R = e^{tA}$.

    Eigenvalues with equal `base` entries meet exactly at t = 1 (a cluster forms) and split
    again by their `spread`, while the frame rotates (`generator` A, antisymmetric).
    """

    generator: Float[Array, "n n"]
    base: Float[Array, " n"]
    spread: Float[Array, " n"]

    def __call__(self, t):
        lam = self.base + (t - 1.0) ** 2 * self.spread
        r = jsl.expm(t * self.generator)
        return (r * lam[None, :]) @ r.T

    @property
    def dtype(self):
        return self.base.dtype


class BreathingRBF(AbstractOperator):
    """Gaussian kernel on fixed points, length scale $0.5 + 0.3\\sin(0.2t)$, divided by n.

    Its spectrum decays faster than any power: a dense cloud of tiny, nearly degenerate
    eigenvalues whose eigenvectors rotate as the length scale breathes.
    """

    points: Float[Array, "n d"]

    def __call__(self, t):
        length = 0.5 + 0.3 * jnp.sin(0.2 * t)
        d2 = jnp.sum((self.points[:, None] - self.points[None]) ** 2, -1)
        return jnp.exp(-d2 / (2 * length**2)) / self.points.shape[0]

    @property
    def dtype(self):
        return self.points.dtype
