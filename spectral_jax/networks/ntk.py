"""Empirical neural tangent kernel of a scalar-output network: the public entry points.

Convention (docs/theory.md §2.1): for a network `apply_fn(params, x)` mapping a batch `x` of
shape (n, ...) to outputs (n,), the Jacobian is $J = \\partial f_\\theta(X)/\\partial\\theta$
(n × P) and

$$K(X_1, X_2) = J(X_1)\\,J(X_2)^T.$$

`empirical_ntk` returns this $K$, **not** divided by n. The operator of the residual dynamics
$\\dot e = -M e$ is $M = K(X, X)/n$; forming it is the caller's job (training does it, and
`ntk_flow_derivative` returns $M$ and $\\dot M$ directly).

Implementations (`NTKImplementation`), all tested against `JACOBIAN_CONTRACTION`:

- `AUTO` (the default): `STRUCTURED` when `apply_fn` has `dense_factors` covering every
  parameter, else `JAXPR_STRUCTURED`.
- `JACOBIAN_CONTRACTION`: materialise $J$ for a block of inputs with reverse mode, contract.
  The reference; memory (block) × P (`ntk_products.py`).
- `NTK_VECTOR_PRODUCTS`: column j of $K$ is $J_1 (J_2^T e_j)$, one VJP then one JVP, vmapped
  over a block of cotangents; no Jacobian of more than one block of inputs is held at once.
- `STRUCTURED`: layerwise Gram products $(A A'^T) \\circ (G G'^T)$ for networks of dense
  layers (`ntk_structured.py`); needs an `apply_fn` with `dense_factors` (from `from_nnx` on
  `MLP`, `ResidualMLP`, `RandomFeatures`); anything else raises.
- `JAXPR_STRUCTURED`: the same Gram products for any network, found by reading the jaxpr of
  `apply_fn` (neural-tangents' "structured derivatives", `ntk_jaxpr.py`): dense layers
  (`x @ W`, `nnx.Linear`, `nn.Dense`) and the biases that follow them in Gram form; other
  biases, elementwise scales (LayerNorm) and convolution kernels by per-example gradients from
  one shared backward pass; any other leaf (weight sharing, unrecognised ops) by the Jacobian
  contraction restricted to it. Exact for every network whose rows are independent;
  `jaxpr_ntk_report` says which leaves took which path.

Chunking (`chunk_size`) splits the inputs into blocks so that peak memory is bounded by the
block size instead of n.

Argument order. `empirical_ntk(apply_fn, params, x1, x2=None)` is the one-shot form: the
network and its parameters first, as in `apply_fn(params, x)` itself. The factory
`ntk_fn(apply_fn)(x1, x2, params)` follows neural-tangents'
`nt.empirical_ntk_fn(f)(x1, x2, params)`, so code written for neural-tangents ports to it by a
rename (neural-tangents' `trace_axes`/`vmap_axes` have no counterpart: outputs are scalars).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._apply import all_finite
from .ntk_jaxpr import jaxpr_structured
from .ntk_products import jacobian_contraction, ntk_vector_products
from .ntk_structured import check_structured, structured

__all__ = ["NTKImplementation", "empirical_ntk", "ntk_fn"]


class NTKImplementation(enum.IntEnum):
    """How `empirical_ntk` computes $K = J_1 J_2^T$ (see the module docstring)."""

    AUTO = 0
    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED = 3
    JAXPR_STRUCTURED = 4


def empirical_ntk(
    apply_fn: Callable,
    params: Any,
    x1: Float[ArrayLike, "n1 ..."],
    x2: Float[ArrayLike, "n2 ..."] | None = None,
    *,
    implementation: NTKImplementation = NTKImplementation.AUTO,
    chunk_size: int | None = None,
) -> Float[Array, "n1 n2"]:
    """Empirical NTK $K(X_1, X_2) = J(X_1) J(X_2)^T$ of a scalar-output network.

    Not divided by n: the training operator is $M = K(X, X)/n$. One compiled computation per
    (apply_fn, implementation, chunk size, shapes), so repeated eager calls are fast; inside an
    outer `jit`/`jvp`/`vmap` this is an ordinary nested call.

    The argument order puts the network and its parameters first, as `apply_fn(params, x)`
    does; neural-tangents' `empirical_ntk_fn(f)(x1, x2, params)` order is that of `ntk_fn`.

    **Arguments:**
    - `apply_fn`: `apply_fn(params, x) -> (n,)` (or (n, 1)), one scalar output per input of
      the batch `x`. From a flax module use `from_nnx` / `from_linen`.
    - `params`: pytree of the differentiated parameters.
    - `x1`: (n1, ...) inputs; `x2`: (n2, ...) inputs of the second argument (default `x1`).
      `K(x_test, X)` is the cross kernel used for test predictions.
    - `implementation`: an `NTKImplementation`; `AUTO` (default) picks the structured path
      that applies (dense factors, else the jaxpr), exact for any network.
    - `chunk_size`: if given, inputs are processed in blocks of this many points, bounding the
      memory (J of one block for the Jacobian/VJP methods and for the fallback leaves of
      `JAXPR_STRUCTURED`; n × width factors plus one block row of K for the structured ones).

    **Returns:** K, shape (n1, n2), dtype of the network output.

    **Raises:** `ValueError` for an empty or unbatched input, `x1`/`x2` feature shapes that
    differ, NaN/Inf in `x1`, `x2` or `params` (checked when they are concrete, skipped under
    tracing), a non-scalar output, a bad `chunk_size`, or `STRUCTURED` on an architecture it
    does not support.
    """
    implementation = _check_implementation(implementation)
    return _checked_ntk(apply_fn, params, x1, x2, implementation, chunk_size)


def ntk_fn(
    apply_fn: Callable,
    *,
    implementation: NTKImplementation = NTKImplementation.AUTO,
    chunk_size: int | None = None,
) -> Callable:
    """`kernel(x1, x2, params) -> K (n1, n2)`, neural-tangents' order (`x2=None`: `x1`).

    The factory form of `empirical_ntk` with the options bound, argument for argument like
    `neural_tangents.empirical_ntk_fn(f)(x1, x2, params)`. Compiled once per input shape;
    inputs and parameters are checked as in `empirical_ntk` (the structured-architecture check,
    and the choice `AUTO` makes, run once per parameter structure and input feature shape).
    """
    implementation = _check_implementation(implementation)
    resolved: dict = {}
    needs_check = (NTKImplementation.STRUCTURED, NTKImplementation.AUTO)

    def kernel(x1, x2, params):
        if implementation not in needs_check:
            return _checked_ntk(apply_fn, params, x1, x2, implementation, chunk_size)
        leaves, treedef = jax.tree.flatten(params)
        structure = (treedef, tuple(np.shape(leaf) for leaf in leaves), np.shape(x1)[1:])

        # The architecture check traces the factors abstractly: once per structure is enough.
        def resolve(x):
            if structure not in resolved:
                resolved[structure] = _resolve(apply_fn, params, x, implementation)
            return resolved[structure]

        return _checked_ntk(apply_fn, params, x1, x2, resolve, chunk_size)

    return kernel


def _checked_ntk(apply_fn, params, x1, x2, implementation, chunk_size):
    """Eager checks (those on values only when concrete), then the compiled kernel.

    `implementation` is an `NTKImplementation` or a callable `x1 -> NTKImplementation` that
    resolves `AUTO` and checks `STRUCTURED` (run after the input checks)."""
    same = x2 is None
    x1 = jnp.asarray(x1)
    x2 = x1 if same else jnp.asarray(x2)
    _check_inputs(x1, x2, same)
    _check_params(params)
    chunk_size = _check_chunk(chunk_size, x1, x2)
    if callable(implementation):
        implementation = implementation(x1)
    else:
        implementation = _resolve(apply_fn, params, x1, implementation)
    x2 = None if same else x2
    return _empirical_ntk_jit(apply_fn, params, x1, x2, implementation, chunk_size)


def _resolve(apply_fn, params, x1, implementation) -> NTKImplementation:
    """`AUTO` as the implementation it stands for; `STRUCTURED` checked against the model."""
    if implementation == NTKImplementation.STRUCTURED:
        check_structured(apply_fn, params, x1)
    if implementation != NTKImplementation.AUTO:
        return implementation
    if callable(getattr(apply_fn, "dense_factors", None)):
        try:
            check_structured(apply_fn, params, x1)
            return NTKImplementation.STRUCTURED
        except ValueError:  # factors that miss some parameters: the jaxpr path is exact
            pass
    return NTKImplementation.JAXPR_STRUCTURED


def _check_implementation(implementation) -> NTKImplementation:
    try:
        return NTKImplementation(implementation)
    except ValueError:
        names = ", ".join(f"NTKImplementation.{m.name}" for m in NTKImplementation)
        raise ValueError(
            f"empirical_ntk: implementation must be one of {names}; got {implementation!r}"
        ) from None


def _check_inputs(x1, x2, same: bool) -> None:
    for name, x in (("x1", x1),) if same else (("x1", x1), ("x2", x2)):
        if x.ndim < 1 or x.shape[0] < 1:
            raise ValueError(
                f"empirical_ntk: {name} must be a non-empty batch (n, ...) with n >= 1, got "
                f"shape {x.shape}"
            )
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            f"empirical_ntk: x1 and x2 must have equal feature shapes; x1 has {x1.shape[1:]} "
            f"(shape {x1.shape}) but x2 has {x2.shape[1:]} (shape {x2.shape})"
        )
    for name, x in (("x1", x1),) if same else (("x1", x1), ("x2", x2)):
        if all_finite(x) is False:
            bad = ~np.isfinite(np.asarray(x)).reshape(x.shape[0], -1).all(axis=1)
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"empirical_ntk: {name} contains NaN or Inf in {rows.size} of its {x.shape[0]} "
                f"rows (first: row {int(rows[0])}); the kernel would be NaN"
            )


def _check_params(params) -> None:
    if all_finite(params) is not False:
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if all_finite(leaf) is False:
            raise ValueError(
                f"empirical_ntk: params contain NaN or Inf (leaf {jax.tree_util.keystr(path)}, "
                f"shape {np.shape(leaf)}); the kernel would be NaN"
            )


def _check_chunk(chunk_size, x1, x2):
    if chunk_size is None:
        return None
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, (int, np.integer))
        or chunk_size < 1
    ):
        raise ValueError(f"empirical_ntk: chunk_size must be a positive int, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    # One block is identical to the unchunked computation.
    return None if chunk_size >= max(x1.shape[0], x2.shape[0]) else chunk_size


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _empirical_ntk_jit(apply_fn, params, x1, x2, implementation, chunk_size):
    same = x2 is None
    x2 = x1 if same else x2
    if implementation == NTKImplementation.JACOBIAN_CONTRACTION:
        return jacobian_contraction(apply_fn, params, x1, x2, same, chunk_size)
    if implementation == NTKImplementation.NTK_VECTOR_PRODUCTS:
        return ntk_vector_products(apply_fn, params, x1, x2, chunk_size)
    if implementation == NTKImplementation.JAXPR_STRUCTURED:
        return jaxpr_structured(apply_fn, params, x1, x2, same, chunk_size)
    return structured(apply_fn, params, x1, x2, same, chunk_size)
