"""A closed-form operator: a fixed spectrum in a rotating eigenbasis (docs/theory.md §2.2).

`RotatingPowerLaw` is the exact check case of the Kato solver (its modal coefficients are known
in closed form); `banded_generator` makes its customary generator.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_concrete, check_square
from .base import AbstractOperator

__all__ = ["RotatingPowerLaw", "banded_generator"]


def banded_generator(n: int, bandwidth: int, coupling: float, seed: int = 0) -> np.ndarray:
    """A random antisymmetric (n, n) generator coupling modes at most `bandwidth` apart.

    Entries $A_{kj} = g_{kj} - g_{jk}$ with $g$ i.i.d. $N(0, \\text{coupling}^2)$ inside the band:
    the customary `RotatingPowerLaw` generator (local mixing along the spectrum).
    """
    rng = np.random.default_rng(seed)
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= bandwidth
    a = coupling * rng.normal(size=(n, n)) * band
    return a - a.T


class RotatingPowerLaw(AbstractOperator):
    """$M(t) = R(t)\\,\\mathrm{diag}(\\lambda)\\,R(t)^T$ with $R(t) = \\exp(tA)$, $A = -A^T$.

    The closed-form check case of docs/theory.md §2.2: the Kato frame is $\\Phi = R$, the
    generator is $W = -A$ and $c(t) = \\exp(-(\\Lambda + A)t)\\,c(0)$ (see `exact_coefficients`).

    **Arguments:**
    - `eigenvalues`: (n,) non-negative, the fixed spectrum (any order; descending is customary).
    - `generator`: (n, n) antisymmetric $A$.

    The spectral decomposition of $A$ is computed once, at construction (also under `jit` /
    `vmap`): to change the generator build a new operator rather than replacing the
    `generator` leaf with `eqx.tree_at`.
    """

    eigenvalues: Float[Array, " n"]
    generator: Float[Array, "n n"]
    # iA = U diag(ω) U^H (Hermitian), so exp(tA) = U diag(e^{-iωt}) U^H: two real matmuls per
    # evaluation instead of a Padé expm with squarings (which dominated both solvers). U is
    # kept as real and imaginary parts: diffrax warns about complex leaves in its `args`.
    _frequencies: Float[Array, " n"]
    _modes_real: Float[Array, "n n"]
    _modes_imag: Float[Array, "n n"]

    def __init__(self, eigenvalues, generator):
        eigenvalues = jnp.asarray(eigenvalues)
        generator = jnp.asarray(generator)
        if eigenvalues.ndim != 1:
            raise ValueError(f"eigenvalues must be 1-D, got shape {eigenvalues.shape}")
        check_square(generator.shape, "generator")
        if generator.shape[0] != eigenvalues.shape[0]:
            raise ValueError(
                f"generator shape {generator.shape} does not match {eigenvalues.shape[0]} "
                "eigenvalues"
            )
        if eigenvalues.dtype != generator.dtype:
            raise TypeError(
                f"eigenvalues ({eigenvalues.dtype}) and generator ({generator.dtype}) must "
                "share one dtype"
            )
        lam, a = as_concrete(eigenvalues), as_concrete(generator)
        if lam is not None and a is not None:
            if not (np.all(np.isfinite(lam)) and np.all(np.isfinite(a))):
                raise ValueError("RotatingPowerLaw: eigenvalues/generator contain NaN or Inf")
            if np.any(lam < 0):
                raise ValueError(f"RotatingPowerLaw: negative eigenvalue {lam.min():.3e}")
            scale = max(np.abs(a).max(), 1e-300)
            if np.abs(a + a.T).max() > 100 * np.finfo(a.dtype).eps * scale:
                raise ValueError("RotatingPowerLaw: generator A must be antisymmetric (A = -A^T)")
        self.eigenvalues = eigenvalues
        self.generator = generator
        frequencies, modes = jnp.linalg.eigh(jax.lax.complex(jnp.zeros_like(generator), generator))
        self._frequencies = frequencies.astype(generator.dtype)
        self._modes_real = jnp.real(modes).astype(generator.dtype)
        self._modes_imag = jnp.imag(modes).astype(generator.dtype)

    def rotation(self, t) -> Float[Array, "n n"]:
        """$R(t) = \\exp(tA)$, from the spectral decomposition of the antisymmetric $A$."""
        phase = jnp.asarray(t, self.dtype) * self._frequencies
        cos, sin = jnp.cos(phase)[None, :], jnp.sin(phase)[None, :]
        x, y = self._modes_real, self._modes_imag
        # Re[(X + iY) diag(cos - i sin) (X - iY)^T] = P X^T + Q Y^T.
        p = x * cos + y * sin
        q = y * cos - x * sin
        return p @ x.T + q @ y.T

    def __call__(self, t):
        r = self.rotation(t)
        return (r * self.eigenvalues[None, :]) @ r.T

    def value_and_derivative(self, t):
        r = self.rotation(t)
        a, lam = self.generator, self.eigenvalues
        # d/dt (R Λ R^T) = R (A Λ - Λ A) R^T, with A Λ - Λ A = A * (λ_j - λ_k).
        commutator = a * (lam[None, :] - lam[:, None])
        return (r * lam[None, :]) @ r.T, r @ commutator @ r.T

    def exact_coefficients(self, t, c0) -> Float[Array, " n"]:
        """Closed-form modal coefficients $\\exp(-(\\Lambda + A)t)\\,c(0)$."""
        t = jnp.asarray(t, self.dtype)
        return jsl.expm(-t * (jnp.diag(self.eigenvalues) + self.generator)) @ c0

    @property
    def dtype(self):
        return self.eigenvalues.dtype
