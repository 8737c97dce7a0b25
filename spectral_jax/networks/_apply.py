"""The `apply_fn(params, x)` contract shared by the eNTK, the adapters and training.

A network is a pure function `apply_fn(params, x)` mapping a batch `x` (n, ...) to one scalar
per input, shape (n,) (an (n, 1) output is accepted and squeezed).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["scalar_outputs", "num_params", "all_finite"]


def scalar_outputs(out, n: int, where: str):
    """`out` as shape (n,), or a `ValueError` naming the shape that `apply_fn` returned."""
    out = jnp.asarray(out)
    if out.shape == (n, 1):
        out = out[:, 0]
    if out.shape != (n,):
        raise ValueError(
            f"{where}: apply_fn(params, x) must give one scalar per input, shape ({n},); "
            f"got {out.shape} for x with {n} rows (for a vector-output network, select or "
            "flatten one output per input inside apply_fn)"
        )
    return out


def num_params(params) -> int:
    """Total number of scalar parameters in a pytree."""
    return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params)))


def all_finite(tree) -> bool | None:
    """Whether every leaf of `tree` is finite; None under tracing (the check is then skipped).

    Reduced on the device: only one boolean comes back to the host, not the arrays.
    """
    leaves = [
        leaf for leaf in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)
    ]
    if not leaves:
        return True
    if any(isinstance(leaf, jax.core.Tracer) for leaf in leaves):
        return None
    try:
        return bool(_all_finite(leaves))
    except jax.errors.ConcretizationTypeError:
        # Concrete arrays closed over inside an outer jit still give traced results.
        return None


@jax.jit
def _all_finite(leaves):
    # One compiled reduction: eager per-leaf checks cost a dispatch each.
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
