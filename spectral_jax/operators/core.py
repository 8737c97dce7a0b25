"""Where `M(t)` comes from: time-dependent symmetric PSD operators.

Every operator is an `equinox.Module` (a pytree), so it can be passed through `jit`, `vmap`
and `diffrax.diffeqsolve`. An operator gives `op(t)` (the matrix $M(t)$), `op.derivative(t)`
($\\dot M(t)$, forward-mode AD unless known in closed form) and
`op.value_and_derivative(t)` (both at once, one forward-mode pass).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_concrete, check_matrix_values, check_square

__all__ = [
    "AbstractOperator",
    "CallableOperator",
    "FrozenOperator",
    "RotatingPowerLaw",
    "InterpolatedOperator",
    "banded_generator",
]


def banded_generator(n: int, bandwidth: int, coupling: float, seed: int = 0) -> np.ndarray:
    """A random antisymmetric (n, n) generator coupling modes at most `bandwidth` apart.

    Entries $A_{kj} = g_{kj} - g_{jk}$ with $g$ i.i.d. $N(0, \text{coupling}^2)$ inside the band:
    the customary `RotatingPowerLaw` generator (local mixing along the spectrum).
    """
    rng = np.random.default_rng(seed)
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= bandwidth
    a = coupling * rng.normal(size=(n, n)) * band
    return a - a.T


class AbstractOperator(eqx.Module):
    """A symmetric positive semi-definite matrix-valued function of time $M(t)$."""

    def __call__(self, t) -> Float[Array, "n n"]:
        raise NotImplementedError

    def value_and_derivative(self, t) -> tuple[Float[Array, "n n"], Float[Array, "n n"]]:
        """$(M(t), \\dot M(t))$ from one forward-mode (JVP) pass along $t$."""
        t = jnp.asarray(t, dtype=self.dtype)
        return jax.jvp(self.__call__, (t,), (jnp.ones_like(t),))

    def derivative(self, t) -> Float[Array, "n n"]:
        """$\\dot M(t)$."""
        return self.value_and_derivative(t)[1]

    @property
    def shape(self) -> tuple[int, int]:
        return jax.eval_shape(self.__call__, jnp.zeros((), self.dtype)).shape

    @property
    def dtype(self):
        raise NotImplementedError


class CallableOperator(AbstractOperator):
    """Wraps any jit-able `fn(t) -> (n, n)` symmetric array.

    `dtype` is the floating type `t` is passed in (default: that of `fn`'s output at `t=0`
    with a float64 probe if x64 is on, else float32). The derivative is forward-mode AD.
    """

    fn: Callable = eqx.field(static=True)
    _dtype: np.dtype = eqx.field(static=True)

    def __init__(self, fn: Callable, dtype=None):
        if not callable(fn):
            raise TypeError(f"CallableOperator needs a callable fn(t) -> (n, n); got {type(fn)}")
        self.fn = fn
        if dtype is None:
            probe = jnp.zeros((), dtype=jnp.result_type(float))
            out = jax.eval_shape(fn, probe)
            check_square(out.shape, "fn(t)")
            dtype = out.dtype
        self._dtype = np.dtype(dtype)

    def __call__(self, t):
        return self.fn(jnp.asarray(t, self._dtype))

    @property
    def dtype(self):
        return self._dtype


class FrozenOperator(AbstractOperator):
    """A constant operator $M(t) = M$ (the lazy / NTK limit): $\\dot M = 0$."""

    matrix: Float[Array, "n n"]

    def __init__(self, matrix):
        matrix = jnp.asarray(matrix)
        check_square(matrix.shape, "M")
        concrete = as_concrete(matrix)
        if concrete is not None:
            check_matrix_values(concrete, "M")
        self.matrix = matrix

    def __call__(self, t):
        return self.matrix

    def value_and_derivative(self, t):
        return self.matrix, jnp.zeros_like(self.matrix)

    @property
    def dtype(self):
        return self.matrix.dtype


class RotatingPowerLaw(AbstractOperator):
    """$M(t) = R(t)\\,\\mathrm{diag}(\\lambda)\\,R(t)^T$ with $R(t) = \\exp(tA)$, $A = -A^T$.

    The closed-form check case of docs/theory.md §2.2: the Kato frame is $\\Phi = R$, the generator is
    $W = -A$ and $c(t) = \\exp(-(\\Lambda + A)t)\\,c(0)$ (see `exact_coefficients`).

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


def _natural_spline_second_derivatives(ts, ys):
    """Second derivatives at the knots of the natural cubic spline through (ts, ys)."""
    h = jnp.diff(ts)
    k = ts.shape[0]
    slopes = (ys[1:] - ys[:-1]) / h[:, None, None]
    rhs = 6.0 * (slopes[1:] - slopes[:-1])
    main = 2.0 * (h[:-1] + h[1:])
    system = jnp.diag(main) + jnp.diag(h[1:-1], 1) + jnp.diag(h[1:-1], -1)
    flat = rhs.reshape(k - 2, -1)
    inner = jnp.linalg.solve(system, flat).reshape(rhs.shape)
    zero = jnp.zeros_like(ys[:1])
    return jnp.concatenate([zero, inner, zero], axis=0)


class InterpolatedOperator(AbstractOperator):
    """A smooth interpolant through saved kernels $M(t_i)$.

    With `derivatives` (saved $\\dot M(t_i)$, e.g. from AD along a training run) it is the
    piecewise cubic Hermite interpolant (C¹, fourth-order accurate); without, the natural
    cubic spline (C²). Outside $[t_0, t_{T-1}]$ the end pieces are extrapolated.

    **Arguments:**
    - `ts`: (T,) strictly increasing times, T ≥ 2 (≥ 3 for the spline).
    - `matrices`: (T, n, n) symmetric kernels.
    - `derivatives`: optional (T, n, n) $\\dot M$ at the same times.
    """

    ts: Float[Array, " T"]
    matrices: Float[Array, "T n n"]
    slopes: Float[Array, "T n n"] | None
    second: Float[Array, "T n n"] | None

    def __init__(self, ts, matrices, derivatives=None):
        ts = jnp.asarray(ts)
        matrices = jnp.asarray(matrices)
        if ts.ndim != 1 or matrices.ndim != 3 or matrices.shape[0] != ts.shape[0]:
            raise ValueError(
                f"InterpolatedOperator needs ts (T,) and matrices (T, n, n); got {ts.shape} "
                f"and {matrices.shape}"
            )
        check_square(matrices.shape[1:], "matrices[i]")
        ts = ts.astype(matrices.dtype)
        concrete_ts = as_concrete(ts)
        if concrete_ts is not None and np.any(np.diff(concrete_ts) <= 0):
            raise ValueError("InterpolatedOperator: ts must be strictly increasing")
        concrete = as_concrete(matrices)
        if concrete is not None:
            for i in range(concrete.shape[0]):
                check_matrix_values(concrete[i], f"matrices[{i}]")
        self.ts = ts
        self.matrices = matrices
        if derivatives is not None:
            derivatives = jnp.asarray(derivatives, matrices.dtype)
            if derivatives.shape != matrices.shape:
                raise ValueError(
                    f"derivatives shape {derivatives.shape} != matrices shape {matrices.shape}"
                )
            if ts.shape[0] < 2:
                raise ValueError("InterpolatedOperator needs at least 2 times")
            self.slopes, self.second = derivatives, None
        else:
            if ts.shape[0] < 3:
                raise ValueError("InterpolatedOperator (spline) needs at least 3 times")
            self.slopes, self.second = None, _natural_spline_second_derivatives(ts, matrices)

    def __call__(self, t):
        # The index is clipped, not t: clipping t would halve the AD derivative at the ends.
        t = jnp.asarray(t, self.dtype)
        i = jnp.clip(jnp.searchsorted(self.ts, t, side="right") - 1, 0, self.ts.shape[0] - 2)
        t0, t1 = self.ts[i], self.ts[i + 1]
        h = t1 - t0
        s = (t - t0) / h
        m0, m1 = self.matrices[i], self.matrices[i + 1]
        if self.slopes is not None:
            h00 = (1 + 2 * s) * (1 - s) ** 2
            h10 = s * (1 - s) ** 2
            h01 = s**2 * (3 - 2 * s)
            h11 = s**2 * (s - 1)
            return h00 * m0 + h10 * h * self.slopes[i] + h01 * m1 + h11 * h * self.slopes[i + 1]
        z0, z1 = self.second[i], self.second[i + 1]
        a, b = 1 - s, s
        return a * m0 + b * m1 + ((a**3 - a) * z0 + (b**3 - b) * z1) * h**2 / 6

    @property
    def dtype(self):
        return self.matrices.dtype
