"""$M(t) = R(t)\\Lambda R(t)^T$ of a `TransportChain` as an operator for the generic engine.

`solve_kato(chain.operator(), e0, ts)` runs the planted family through the generic Kato
solver (one `eigh` per step); `planted.solve_chain` is the same ODE with the closed-form frame.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..operators import AbstractOperator

__all__ = ["TransportChainOperator"]


def _complex_dtype(dtype):
    return jnp.complex128 if jnp.dtype(dtype) == jnp.float64 else jnp.complex64


class TransportChainOperator(AbstractOperator):
    """$M(t) = R\\Lambda R^T$, $R = \\exp(H(t)A_0)$, with a closed-form $\\dot M$.

    $R$ comes from one Hermitian eigendecomposition of $iA_0$, done once at construction.
    """

    chain: eqx.Module  # a `planted.TransportChain` (not imported: planted imports this)
    # i A0 = U diag(ω) U^H; U kept as real and imaginary parts (no complex leaves in a pytree
    # that diffrax integrates through).
    _vectors_re: Float[Array, "n n"]
    _vectors_im: Float[Array, "n n"]
    _frequencies: Float[Array, " n"]

    def __init__(self, chain: eqx.Module):
        self.chain = chain
        a0 = chain.generator_matrix()
        cdtype = _complex_dtype(a0.dtype)
        freqs, vecs = jnp.linalg.eigh(jax.lax.complex(jnp.zeros_like(a0), a0).astype(cdtype))
        self._vectors_re = jnp.real(vecs)
        self._vectors_im = jnp.imag(vecs)
        self._frequencies = freqs

    def rotation(self, t) -> Float[Array, "n n"]:
        # exp(H A0) = U diag(exp(-i ω H)) U^H, real up to round-off.
        angle = -self._frequencies * self.chain.phase(t)
        # Re(U e^{iθ} U^H) with U = P + iQ: (P cos - Q sin) P^T + (P sin + Q cos) Q^T.
        p, q = self._vectors_re, self._vectors_im
        cos, sin = jnp.cos(angle)[None, :], jnp.sin(angle)[None, :]
        return (p * cos - q * sin) @ p.T + (p * sin + q * cos) @ q.T

    def __call__(self, t):
        r = self.rotation(t)
        return (r * self.chain.eigenvalues[None, :]) @ r.T

    def value_and_derivative(self, t):
        r = self.rotation(t)
        lam = self.chain.eigenvalues
        a0 = self.chain.generator_matrix()
        # dM/dt = h R (A0 Λ - Λ A0) R^T.
        commutator = a0 * (lam[None, :] - lam[:, None])
        return (r * lam[None, :]) @ r.T, self.chain.modulation(t) * (r @ commutator @ r.T)

    @property
    def dtype(self):
        return self.chain.eigenvalues.dtype
