"""The exact time derivative of the eNTK along gradient flow (no finite differences).

Along $\\dot\\theta = -J^T e/(n\\alpha)$ (docs/theory.md §2.1, α the output scale) the operator
$M = K(X, X)/n$ moves as $\\dot M = \\frac{1}{n}\\,\\partial_\\theta K[\\dot\\theta]$, one
forward-mode pass through the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._apply import scalar_outputs
from .ntk import NTKImplementation, empirical_ntk

__all__ = ["flow_velocity", "kernel_jvp", "ntk_flow_derivative"]


def flow_velocity(
    apply_fn: Callable,
    params: Any,
    x: Float[ArrayLike, "n ..."],
    residual: Float[ArrayLike, " n"],
    *,
    output_scale: float | Float[Array, ""] = 1.0,  # an array when swept (traced)
) -> Any:
    """$\\dot\\theta = -J^T e/(n\\alpha)$: gradient flow of $\\|\\alpha(f_\\theta -
    f_{\\theta_0}) - y\\|^2/(2n\\alpha^2)$ at residual `e` (n,), with α = `output_scale`
    (α = 1 gives $-J^T e/n$). Returns a pytree like `params`."""
    n = x.shape[0]
    out, vjp = jax.vjp(lambda p: scalar_outputs(apply_fn(p, x), n, "flow_velocity"), params)
    (grad,) = vjp(jnp.asarray(residual, out.dtype))
    scale = -1.0 / (n * output_scale)
    return jax.tree.map(lambda g: scale * g, grad)


def kernel_jvp(
    apply_fn: Callable,
    params: Any,
    tangent: Any,
    x1: Float[ArrayLike, "n1 ..."],
    x2: Float[ArrayLike, "n2 ..."] | None = None,
    *,
    implementation: NTKImplementation = NTKImplementation.AUTO,
    chunk_size: int | None = None,
) -> tuple[Float[Array, "n1 n2"], Float[Array, "n1 n2"]]:
    """$(K, dK)$ with $dK = \\frac{d}{ds} K(\\theta + s\\,v)|_{s=0}$: forward-mode AD of the
    kernel along the parameter direction `tangent` (same pytree as `params`)."""

    def kernel(p):
        return empirical_ntk(
            apply_fn, p, x1, x2, implementation=implementation, chunk_size=chunk_size
        )

    return jax.jvp(kernel, (params,), (tangent,))


def ntk_flow_derivative(
    apply_fn: Callable,
    params: Any,
    x: Float[ArrayLike, "n ..."],
    residual: Float[ArrayLike, " n"],
    *,
    output_scale: float | Float[Array, ""] = 1.0,  # an array when swept (traced)
    implementation: NTKImplementation = NTKImplementation.AUTO,
    chunk_size: int | None = None,
) -> tuple[Float[Array, "n n"], Float[Array, "n n"]]:
    """$(M, \\dot M)$ along gradient flow, exactly (no finite differences).

    $M = K(X, X)/n$; $\\dot\\theta = -J^T e/(n\\alpha)$ (`flow_velocity`) and
    $\\dot M = \\frac{1}{n}\\,\\partial_\\theta K[\\dot\\theta]$ by one forward-mode pass.

    **Arguments:** `apply_fn`, `params` as in `empirical_ntk`; `x` (n, ...) training inputs;
    `residual` (n,) $e = f_\\alpha(X) - y$; `output_scale` the Chizat–Bach α
    (docs/theory.md §2.1); `implementation`, `chunk_size` as in `empirical_ntk`.

    **Returns:** `(M, dM)`, both (n, n).
    """
    n = x.shape[0]
    velocity = flow_velocity(apply_fn, params, x, residual, output_scale=output_scale)
    k, dk = kernel_jvp(
        apply_fn, params, velocity, x, implementation=implementation, chunk_size=chunk_size
    )
    return k / n, dk / n
