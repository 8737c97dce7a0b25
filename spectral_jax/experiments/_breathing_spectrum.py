"""`BreathingSpectrum`: a moving-eigenvalue operator with a closed-form derivative.

The check case of the windowed budget with migration (`experiments/shell_budget.py`, and
`tests/test_budget.py`): eigenvalues cross logarithmic shell edges in both directions while the
eigenvectors rotate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import spectral_jax as sj

__all__ = ["BreathingSpectrum"]


class BreathingSpectrum(sj.AbstractOperator):
    """$M(t) = R(t)\\,\\mathrm{diag}(\\lambda(0)^{p(t)})\\,R(t)^T$, a moving-eigenvalue check case.

    $p(t) = 1 + a\\sin(\\omega t)$ moves every eigenvalue below 1 down and up again across
    logarithmic shell edges (the map $x \\mapsto x^p$ keeps the order, so modes never cross
    each other). $R(t) = Q B(t) Q^T$ with $B$ block-diagonal plane rotations at rates
    `frequencies`, i.e. $R = e^{tA}$ with $A = QJQ^T$; in the frame $\\Phi = R$ the Kato
    generator is $W = -A$. $\\dot M = R(AD - DA + \\dot D)R^T$ in closed form.
    """

    base: jax.Array  # λ(0), (n,)
    basis: jax.Array  # Q, (n, n) orthogonal
    frequencies: jax.Array  # (n // 2,)
    amplitude: jax.Array
    omega: jax.Array

    def __init__(self, base, basis, frequencies, amplitude, omega):
        self.base = jnp.asarray(base)
        self.basis = jnp.asarray(basis, self.base.dtype)
        self.frequencies = jnp.asarray(frequencies, self.base.dtype)
        self.amplitude = jnp.asarray(amplitude, self.base.dtype)
        self.omega = jnp.asarray(omega, self.base.dtype)

    @classmethod
    def random(cls, n, exponent, coupling, amplitude, omega, seed, dtype=jnp.float64):
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        base = np.arange(1, n + 1, dtype=np.float64) ** -exponent
        freqs = coupling * rng.uniform(0.5, 1.5, size=n // 2)
        return cls(jnp.asarray(base, dtype), q, freqs, amplitude, omega)

    def _plane_rotation(self, t):
        n = self.base.shape[0]
        m = self.frequencies.shape[0]
        theta = self.frequencies * t
        even, odd = 2 * jnp.arange(m), 2 * jnp.arange(m) + 1
        diag = jnp.ones(n, self.dtype).at[even].set(jnp.cos(theta)).at[odd].set(jnp.cos(theta))
        b = jnp.diag(diag)
        return b.at[even, odd].set(-jnp.sin(theta)).at[odd, even].set(jnp.sin(theta))

    def generator(self):
        n, m = self.base.shape[0], self.frequencies.shape[0]
        even, odd = 2 * jnp.arange(m), 2 * jnp.arange(m) + 1
        j = jnp.zeros((n, n), self.dtype).at[even, odd].set(-self.frequencies)
        j = j.at[odd, even].set(self.frequencies)
        return self.basis @ j @ self.basis.T

    def eigenvalues(self, t):
        t = jnp.asarray(t, self.dtype)
        return self.base ** (1.0 + self.amplitude * jnp.sin(self.omega * t))

    def _parts(self, t):
        t = jnp.asarray(t, self.dtype)
        r = self.basis @ self._plane_rotation(t) @ self.basis.T
        lam = self.eigenvalues(t)
        dp = self.amplitude * self.omega * jnp.cos(self.omega * t)
        return r, lam, lam * jnp.log(self.base) * dp

    def __call__(self, t):
        r, lam, _ = self._parts(t)
        return (r * lam[None, :]) @ r.T

    def value_and_derivative(self, t):
        r, lam, dlam = self._parts(t)
        a = self.generator()
        inner = a * (lam[None, :] - lam[:, None]) + jnp.diag(dlam)
        return (r * lam[None, :]) @ r.T, r @ inner @ r.T

    @property
    def dtype(self):
        return self.base.dtype
