"""Empirical neural tangent kernels of scalar-output networks, and their exact time derivative.

Convention (docs/theory.md §2.1): for a network `apply_fn(params, x)` mapping a batch `x` of shape
(n, ...) to outputs (n,), the Jacobian is $J = \\partial f_\\theta(X)/\\partial\\theta$ (n × P) and

$$K(X_1, X_2) = J(X_1)\\,J(X_2)^T.$$

`empirical_ntk` returns this $K$, **not** divided by n. The operator of the residual dynamics
$\\dot e = -M e$ is $M = K(X, X)/n$; forming it is the caller's job (`spectral_jax.training`
does it, and `ntk_flow_derivative` returns $M$ and $\\dot M$ directly).

Three implementations, all tested against the first:

- `JACOBIAN_CONTRACTION`: materialise $J$ for a block of inputs with reverse mode, contract.
  The reference; memory (block) × P.
- `NTK_VECTOR_PRODUCTS`: column j of $K$ is $J_1 (J_2^T e_j)$, one VJP then one JVP, vmapped
  over a block of cotangents; no Jacobian of more than one block of inputs is held at once.
- `STRUCTURED`: for networks built from dense layers $y = w\\,a W + b\\,\\beta$, the weight
  block of $J J^T$ is $(A A'^T) \\circ (G G'^T)$, with $A$ the layer inputs and $G$ the
  back-propagated gradients $\\partial f/\\partial y$ (Novak et al., "Fast finite width neural
  tangent kernel", ICML 2022, "structured derivatives"). Memory n × width per layer; $J$ is
  never formed. Needs an `apply_fn` exposing `dense_factors(params, x)` (the adapters of
  `from_nnx` provide it for the models of `spectral_jax.models`); anything else raises.

Chunking (`chunk_size`) splits the inputs into blocks so that peak memory is bounded by the
block size instead of n.

Adapters: `from_nnx(module)` and `from_linen(module, variables)` return `(apply_fn, params)`;
only trainable parameters are differentiated, every other collection (batch statistics,
frozen random features, ...) is held fixed.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = [
    "NTKImplementation",
    "NNXApply",
    "LinenApply",
    "empirical_ntk",
    "ntk_fn",
    "kernel_jvp",
    "flow_velocity",
    "ntk_flow_derivative",
    "from_nnx",
    "from_linen",
    "num_params",
]


class NTKImplementation(enum.IntEnum):
    """How `empirical_ntk` computes $K = J_1 J_2^T$ (see the module docstring)."""

    JACOBIAN_CONTRACTION = 1
    NTK_VECTOR_PRODUCTS = 2
    STRUCTURED = 3


def num_params(params) -> int:
    """Total number of scalar parameters in a pytree."""
    return int(sum(np.prod(np.shape(leaf)) for leaf in jax.tree.leaves(params)))


# ----------------------------------------------------------------------------------------------
# Blocking helpers


def _to_blocks(x, size: int):
    """(n, ...) -> (num_blocks, size, ...), the last block padded with copies of row 0."""
    n = x.shape[0]
    num_blocks = -(-n // size)
    pad = num_blocks * size - n
    if pad:
        # Copies of a real input, not zeros: padding must not produce NaN/Inf in the network.
        x = jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))], axis=0)
    return x.reshape((num_blocks, size, *x.shape[1:]))


def _from_blocks(blocks, n: int):
    return blocks.reshape((-1, *blocks.shape[2:]))[:n]


def _scalar_outputs(out, n: int, where: str):
    out = jnp.asarray(out)
    if out.shape == (n, 1):
        out = out[:, 0]
    if out.shape != (n,):
        raise ValueError(
            f"{where}: apply_fn(params, x) must give one scalar per input, shape ({n},); "
            f"got {out.shape}"
        )
    return out


def _flat_jacobian(apply_fn, params, x):
    """J (n, P) of the batch outputs w.r.t. all parameter leaves, by reverse mode."""
    n = x.shape[0]
    jac = jax.jacrev(lambda p: _scalar_outputs(apply_fn(p, x), n, "empirical_ntk"))(params)
    leaves = [leaf.reshape(n, -1) for leaf in jax.tree.leaves(jac)]
    return jnp.concatenate(leaves, axis=1)


def _pairwise_blocks(block_fn, x1, x2, chunk: int, prepare=lambda xa: xa):
    """Assemble K from (chunk × chunk) blocks `block_fn(prepare(x1_block), x2_block)`.

    `prepare` runs once per row of blocks (e.g. the Jacobian of the row's inputs)."""
    n1, n2 = x1.shape[0], x2.shape[0]
    b1, b2 = _to_blocks(x1, chunk), _to_blocks(x2, chunk)

    def row(xa):
        state = prepare(xa)
        cols = jax.lax.map(lambda xb: block_fn(state, xb), b2)  # (nb2, c, c)
        return jnp.transpose(cols, (1, 0, 2)).reshape(chunk, -1)  # (c, nb2 * c)

    rows = jax.lax.map(row, b1)  # (nb1, c, nb2 * c)
    return _from_blocks(rows, n1)[:, :n2]


# ----------------------------------------------------------------------------------------------
# Implementations


def _jacobian_contraction(apply_fn, params, x1, x2, same, chunk):
    def jacobian(x):
        return _flat_jacobian(apply_fn, params, x)

    if chunk is None:
        j1 = jacobian(x1)
        return j1 @ (j1 if same else jacobian(x2)).T
    # One Jacobian block per row of K held at a time, plus one per column block.
    return _pairwise_blocks(lambda ja, xb: ja @ jacobian(xb).T, x1, x2, chunk, prepare=jacobian)


def _ntk_vector_products(apply_fn, params, x1, x2, chunk):
    def block(xa, xb):
        na, nb = xa.shape[0], xb.shape[0]
        fa = lambda p: _scalar_outputs(apply_fn(p, xa), na, "empirical_ntk")  # noqa: E731
        fb = lambda p: _scalar_outputs(apply_fn(p, xb), nb, "empirical_ntk")  # noqa: E731
        out_b, vjp_b = jax.vjp(fb, params)

        def column(cotangent):
            (tangent,) = vjp_b(cotangent)  # J_b^T e_j: one parameter-sized vector
            return jax.jvp(fa, (params,), (tangent,))[1]  # J_a J_b^T e_j

        eye = jnp.eye(nb, dtype=out_b.dtype)
        return jax.vmap(column)(eye).T  # (na, nb)

    if chunk is None:
        return block(x1, x2)
    return _pairwise_blocks(block, x1, x2, chunk)


def _structured_factors(apply_fn, params, x, chunk):
    """Per-layer factors (A_aug (n, d_in[+1]), G (n, d_out)), computed in input blocks."""
    if chunk is None:
        return apply_fn.dense_factors(params, x)
    n = x.shape[0]
    blocks = jax.lax.map(lambda xb: apply_fn.dense_factors(params, xb), _to_blocks(x, chunk))
    return jax.tree.map(lambda b: _from_blocks(b, n), blocks)


def _check_structured(apply_fn, params, x):
    if not callable(getattr(apply_fn, "dense_factors", None)):
        raise ValueError(
            "NTKImplementation.STRUCTURED needs an apply_fn with a `dense_factors(params, x)` "
            f"method (networks of dense layers); got {type(apply_fn).__name__}. Build it with "
            "`from_nnx(model)` on a spectral_jax.models network (MLP, ResidualMLP, "
            "RandomFeatures), or use JACOBIAN_CONTRACTION / NTK_VECTOR_PRODUCTS."
        )
    shapes = jax.eval_shape(apply_fn.dense_factors, params, x[:1])
    covered = sum(a.shape[1] * g.shape[1] for a, g in shapes)
    total = num_params(params)
    if covered != total:
        raise ValueError(
            f"NTKImplementation.STRUCTURED: the dense-layer factors of {type(apply_fn).__name__} "
            f"cover {covered} parameters but params hold {total}: the architecture has "
            "parameters outside dense layers, which the structured kernel does not support"
        )


def _structured(apply_fn, params, x1, x2, same, chunk):
    f1 = _structured_factors(apply_fn, params, x1, chunk)
    f2 = f1 if same else _structured_factors(apply_fn, params, x2, chunk)

    def rows(a1g1):
        # Σ_l (A1 A2^T) ∘ (G1 G2^T): the weight and bias blocks of J1 J2^T, layer by layer.
        out = None
        for (a1, g1), (a2, g2) in zip(a1g1, f2, strict=True):
            term = (a1 @ a2.T) * (g1 @ g2.T)
            out = term if out is None else out + term
        return out

    if chunk is None:
        return rows(f1)
    n1 = x1.shape[0]
    blocks = jax.lax.map(rows, jax.tree.map(lambda a: _to_blocks(a, chunk), f1))
    return _from_blocks(blocks, n1)


def empirical_ntk(
    apply_fn: Callable,
    params: Any,
    x1: Float[Array, "n1 ..."],
    x2: Float[Array, "n2 ..."] | None = None,
    *,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
) -> Float[Array, "n1 n2"]:
    """Empirical NTK $K(X_1, X_2) = J(X_1) J(X_2)^T$ of a scalar-output network.

    Not divided by n: the training operator is $M = K(X, X)/n$. Traceable; wrap in `jax.jit`
    (or use `ntk_fn`) for speed.

    **Arguments:**
    - `apply_fn`: `apply_fn(params, x) -> (n,)` (or (n, 1)), one scalar output per input of
      the batch `x`. From a flax module use `from_nnx` / `from_linen`.
    - `params`: pytree of the differentiated parameters.
    - `x1`: (n1, ...) inputs; `x2`: (n2, ...) inputs of the second argument (default `x1`).
      `K(x_test, X)` is the cross kernel used for test predictions.
    - `implementation`: an `NTKImplementation`.
    - `chunk_size`: if given, inputs are processed in blocks of this many points, bounding the
      memory (J of one block for the Jacobian/VJP methods; n × width factors plus one block
      row of K for the structured one).

    **Returns:** K, shape (n1, n2), dtype of the network output.

    **Raises:** `ValueError` for a non-scalar output, a bad `chunk_size`, mismatched input
    shapes, or `STRUCTURED` on an architecture it does not support.
    """
    implementation = NTKImplementation(implementation)
    same = x2 is None
    x1 = jnp.asarray(x1)
    x2 = x1 if same else jnp.asarray(x2)
    _check_inputs(x1, x2)
    chunk_size = _check_chunk(chunk_size, x1, x2)
    if implementation == NTKImplementation.STRUCTURED:
        _check_structured(apply_fn, params, x1)
    # One compiled computation per (apply_fn, implementation, chunk, shapes): eager calls are
    # fast, and inside an outer jit/jvp/vmap this is an ordinary nested call.
    x2 = None if same else x2
    return _empirical_ntk_jit(apply_fn, params, x1, x2, implementation, chunk_size)


def _check_inputs(x1, x2):
    if x1.ndim < 1 or x2.ndim < 1 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            f"empirical_ntk: x1 and x2 must be batches with equal feature shapes; got "
            f"{x1.shape} and {x2.shape}"
        )


def _check_chunk(chunk_size, x1, x2):
    if chunk_size is None:
        return None
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"empirical_ntk: chunk_size must be a positive int, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    # One block is identical to the unchunked computation.
    return None if chunk_size >= max(x1.shape[0], x2.shape[0]) else chunk_size


@functools.partial(jax.jit, static_argnums=(0, 4, 5))
def _empirical_ntk_jit(apply_fn, params, x1, x2, implementation, chunk_size):
    same = x2 is None
    x2 = x1 if same else x2
    if implementation == NTKImplementation.JACOBIAN_CONTRACTION:
        return _jacobian_contraction(apply_fn, params, x1, x2, same, chunk_size)
    if implementation == NTKImplementation.NTK_VECTOR_PRODUCTS:
        return _ntk_vector_products(apply_fn, params, x1, x2, chunk_size)
    return _structured(apply_fn, params, x1, x2, same, chunk_size)


def ntk_fn(
    apply_fn: Callable,
    *,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
) -> Callable:
    """A jitted `kernel(params, x1, x2=None) -> K (n1, n2)` (see `empirical_ntk`)."""

    @jax.jit
    def _pair(params, x1, x2):
        return empirical_ntk(
            apply_fn, params, x1, x2, implementation=implementation, chunk_size=chunk_size
        )

    @jax.jit
    def _self(params, x1):
        return empirical_ntk(
            apply_fn, params, x1, implementation=implementation, chunk_size=chunk_size
        )

    def kernel(params, x1, x2=None):
        return _self(params, x1) if x2 is None else _pair(params, x1, x2)

    return kernel


# ----------------------------------------------------------------------------------------------
# Exact time derivative along gradient flow


def flow_velocity(apply_fn, params, x, residual, *, alpha=1.0):
    """$\\dot\\theta = -J^T e/(n\\alpha)$: gradient flow of $\\|\\alpha(f_\\theta - f_{\\theta_0})
    - y\\|^2/(2n\\alpha^2)$ with residual `e` (n,) (docs/theory.md §2.1; α = 1 gives $-J^T e/n$)."""
    n = x.shape[0]
    out, vjp = jax.vjp(lambda p: _scalar_outputs(apply_fn(p, x), n, "flow_velocity"), params)
    (grad,) = vjp(jnp.asarray(residual, out.dtype))
    scale = -1.0 / (n * alpha)
    return jax.tree.map(lambda g: scale * g, grad)


def kernel_jvp(
    apply_fn,
    params,
    tangent,
    x1,
    x2=None,
    *,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
):
    """$(K, dK)$ with $dK = \\frac{d}{ds} K(\\theta + s\\,v)|_{s=0}$: forward-mode AD of the
    kernel along the parameter direction `tangent` (same pytree as `params`)."""

    def kernel(p):
        return empirical_ntk(
            apply_fn, p, x1, x2, implementation=implementation, chunk_size=chunk_size
        )

    return jax.jvp(kernel, (params,), (tangent,))


def ntk_flow_derivative(
    apply_fn,
    params,
    x,
    residual,
    *,
    alpha=1.0,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
):
    """$(M, \\dot M)$ along gradient flow, exactly (no finite differences).

    $M = K(X, X)/n$; $\\dot\\theta = -J^T e/(n\\alpha)$ (`flow_velocity`) and
    $\\dot M = \\frac{1}{n}\\,\\partial_\\theta K[\\dot\\theta]$ by one forward-mode pass.

    **Arguments:** `apply_fn`, `params` as in `empirical_ntk`; `x` (n, ...) training inputs;
    `residual` (n,) $e = f_\\alpha(X) - y$; `alpha` the output scale.

    **Returns:** `(M, dM)`, both (n, n).
    """
    n = x.shape[0]
    velocity = flow_velocity(apply_fn, params, x, residual, alpha=alpha)
    k, dk = kernel_jvp(
        apply_fn, params, velocity, x, implementation=implementation, chunk_size=chunk_size
    )
    return k / n, dk / n


# ----------------------------------------------------------------------------------------------
# Flax adapters


class NNXApply:
    """`apply_fn(params, x)` for a flax nnx module split into (graphdef, Params, rest).

    The `rest` state (batch statistics, frozen weights, RNG counters, ...) is held fixed; any
    update the module makes to it during a call is discarded, so run stateful layers in
    evaluation mode (e.g. `BatchNorm(use_running_average=True)`).
    """

    def __init__(self, graphdef, rest, module_type: type | None = None):
        self.graphdef = graphdef
        self.rest = rest
        self.module_type = module_type

    def module(self, params):
        from flax import nnx

        return nnx.merge(self.graphdef, params, self.rest, copy=True)

    def __call__(self, params, x):
        return _scalar_outputs(self.module(params)(x), x.shape[0], "NNXApply")

    def __getattr__(self, name):
        # `dense_factors` exists only for modules that provide `ntk_dense_factors`, so that
        # `STRUCTURED` fails with a clear message on anything else.
        if name == "dense_factors":
            cls = self.__dict__.get("module_type")
            if cls is not None and hasattr(cls, "ntk_dense_factors"):
                return lambda params, x: self.module(params).ntk_dense_factors(x)
        raise AttributeError(name)


def from_nnx(module) -> tuple[NNXApply, Any]:
    """Split an nnx module into `(apply_fn, params)` for `empirical_ntk` and training.

    `params` is the `nnx.State` of the module's `nnx.Param` variables (a pytree); everything
    else (`nnx.BatchStat`, non-Param variables such as frozen random features) is captured in
    `apply_fn` and held fixed. `apply_fn(params, x)` merges a fresh copy, so it is pure and can
    be traced, differentiated and vmapped. Rebuild a module with `apply_fn.module(params)`.
    """
    from flax import nnx

    if not isinstance(module, nnx.Module):
        raise TypeError(f"from_nnx expects a flax.nnx.Module, got {type(module).__name__}")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return NNXApply(graphdef, rest, type(module)), params


class LinenApply:
    """`apply_fn(params, x)` for a linen module; non-`params` collections held fixed."""

    def __init__(self, module, rest: dict, method=None):
        self.linen_module = module
        self.rest = rest
        self.method = method

    def __call__(self, params, x):
        out = self.linen_module.apply({"params": params, **self.rest}, x, method=self.method)
        return _scalar_outputs(out, x.shape[0], "LinenApply")


def from_linen(module, variables, *, method=None) -> tuple[LinenApply, Any]:
    """`(apply_fn, params)` for a linen module and its variables.

    The `params` collection is differentiated; every other collection (`batch_stats`, ...)
    is held fixed (the module is applied without `mutable`, so layers must be in evaluation
    mode, e.g. `BatchNorm(use_running_average=True)`).

    **Raises:** `ValueError` if `variables` has no `params` collection.
    """
    variables = dict(variables)
    if "params" not in variables:
        raise ValueError(
            f"from_linen: variables need a 'params' collection; got {sorted(variables)}"
        )
    params = variables.pop("params")
    return LinenApply(module, variables, method), params
