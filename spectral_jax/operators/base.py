"""The operator interface and the two generic operators (docs/theory.md §2.1).

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
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_concrete, check_matrix_values, check_square

__all__ = ["AbstractOperator", "CallableOperator", "FrozenOperator"]


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
