"""The structured eNTK of any network, read from its jaxpr ("structured derivatives").

Novak et al., "Fast finite width neural tangent kernel" (ICML 2022): for a parameter $W$ used
once, in $y = a W$, the per-example gradient is $A^T G$ with $A$ the layer input and
$G = \\partial f/\\partial y$, so its block of $K = J_1 J_2^T$ is

$$K_W[i, j] = \\sum_{r, s} (A_i A_j^T)_{rs}\\,(G_i G_j^T)_{rs}
\\quad (= (A_1 A_2^T) \\circ (G_1 G_2^T) \\text{ for one row per example}),$$

and $J$ is never formed. `ntk_jaxpr_trace` reads `apply_fn`'s jaxpr to find such uses in any
network (plain JAX functions, `nnx.Linear`, `nn.Dense`, ...). One `vmap`ped backward pass over
the examples, with a zero probe added to every such layer output, gives all $G$; the forward
pass records all $A$. Biases that follow a dense layer join its Gram product ($A A'^T + 1$);
other recognised leaves (biases of convolutions, LayerNorm scales, convolution kernels) take
their per-example gradients from the same backward pass ($J_\\text{leaf} J_\\text{leaf}'^T$,
memory n × leaf size). Everything else (weight sharing, unrecognised ops) falls back to the
Jacobian contraction restricted to those leaves, so the sum is always the exact kernel.

The per-example function is `apply_fn(params, x[None])[0]`: the network must treat the rows of
a batch independently (as the `apply_fn` contract and every other implementation assume).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from ._blocks import from_blocks, to_blocks
from .ntk_jaxpr_trace import LeafKind, plan_program, run, trace_program
from .ntk_products import jacobian_contraction

__all__ = ["LeafKind", "LeafReport", "jaxpr_ntk_report", "jaxpr_structured"]


@dataclasses.dataclass(frozen=True)
class LeafReport:
    """One parameter leaf: its pytree path, `LeafKind`, using primitive and size."""

    path: str
    kind: LeafKind
    primitive: str | None
    size: int


def jaxpr_ntk_report(
    apply_fn: Callable, params: Any, x: Float[ArrayLike, "n ..."]
) -> tuple[LeafReport, ...]:
    """How `NTKImplementation.JAXPR_STRUCTURED` treats each parameter leaf.

    **Arguments:** `apply_fn`, `params` as in `empirical_ntk`; `x` a batch (n, ...) of inputs
    (only the shape and dtype of one row are used).

    **Returns:** one `LeafReport` per leaf of `params`, in `jax.tree.leaves` order;
    `report.kind.structured` is False only for leaves computed by the fallback.

    **Raises:** `ValueError` if `x` has no rows or `apply_fn` does not give one scalar per input.
    """
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"jaxpr_ntk_report: x must be a non-empty batch, got shape {x.shape}")
    with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = [leaf for _, leaf in with_path]
    plan = plan_program(trace_program(apply_fn, leaves, treedef, x[0]))
    return tuple(
        LeafReport(jax.tree_util.keystr(path), kind, prim, int(np.size(leaf)))
        for (path, leaf), kind, prim in zip(with_path, plan.kinds, plan.primitives, strict=True)
    )


def _factors(prog, plan, leaves, x, dtype):
    """Per-example factors of a batch: `([A], [G], J_direct or None)`.

    A site with one row gives A (n, C), G (n, F); with R rows, (n, R, C) and (n, R, F).
    """

    def one(xi):
        def forward(probes, direct):
            vals = list(leaves)
            for k, v in zip(plan.direct, direct, strict=True):
                vals[k] = v
            return run(prog, plan, vals, xi, probes)

        probes = []
        for site in plan.sites:
            aval = prog.avals[prog.eqns[site.eqn][4][0]]
            probes.append(jnp.zeros(aval.shape, aval.dtype))
        direct = [leaves[k] for k in plan.direct]
        out, vjp, inputs = jax.vjp(forward, probes, direct, has_aux=True)
        g_sites, g_direct = vjp(jnp.ones_like(out))
        a_rows = [_rows(a, s.a_perm, s.rows, s.cols, dtype) for s, a in zip(plan.sites, inputs)]
        g_rows = [_rows(g, s.g_perm, s.rows, s.feats, dtype) for s, g in zip(plan.sites, g_sites)]
        # Only the leaves differentiated here: W of a Gram site is held fixed (no A^T G formed).
        j = jnp.concatenate([g.reshape(-1).astype(dtype) for g in g_direct]) if direct else None
        return a_rows, g_rows, j

    return jax.vmap(one)(x)


def _rows(value, perm, rows, width, dtype):
    value = jnp.transpose(jnp.asarray(value), perm).astype(dtype)
    return value.reshape(width) if rows == 1 else value.reshape(rows, width)


def _batched_factors(prog, plan, leaves, x, dtype, chunk):
    if chunk is None:
        return _factors(prog, plan, leaves, x, dtype)
    blocks = jax.lax.map(lambda xb: _factors(prog, plan, leaves, xb, dtype), to_blocks(x, chunk))
    return jax.tree.map(lambda b: from_blocks(b, x.shape[0]), blocks)


def _block(plan, f1, f2):
    """The structured part of K for the rows of `f1` against the rows of `f2`."""
    (a1, g1, j1), (a2, g2, j2) = f1, f2
    k = None
    for site, a, b, g, h in zip(plan.sites, a1, a2, g1, g2, strict=True):
        if site.rows == 1:
            gram = a @ b.T
            gram = gram if site.weight == 1.0 else site.weight * gram
            gram = gram + site.bias if site.bias else gram
            term = gram * (g @ h.T)
        else:
            term = site.weight * jnp.einsum("irc,jsc,irf,jsf->ij", a, b, g, h)
        k = term if k is None else k + term
    if j1 is not None:
        k = j1 @ j2.T if k is None else k + j1 @ j2.T
    return k


def jaxpr_structured(apply_fn, params, x1, x2, same: bool, chunk: int | None):
    """$K = \\sum_\\text{leaves} K_\\text{leaf}$: Gram products, per-example gradients and the
    Jacobian contraction of the fallback leaves; one block row of K at a time when chunked."""
    leaves, treedef = jax.tree.flatten(params)
    prog = trace_program(apply_fn, leaves, treedef, x1[0])
    plan = plan_program(prog)
    dtype = prog.out.aval.dtype if hasattr(prog.out, "aval") else prog.avals[prog.out].dtype
    k = None
    if plan.sites or plan.direct:
        f1 = _batched_factors(prog, plan, leaves, x1, dtype, chunk)
        f2 = f1 if same else _batched_factors(prog, plan, leaves, x2, dtype, chunk)
        if chunk is None:
            k = _block(plan, f1, f2)
        else:
            rows = jax.lax.map(
                lambda fa: _block(plan, fa, f2), jax.tree.map(lambda a: to_blocks(a, chunk), f1)
            )
            k = from_blocks(rows, x1.shape[0])
    if plan.fallback:

        def restricted(fallback_leaves, x):
            vals = list(leaves)
            for i, v in zip(plan.fallback, fallback_leaves, strict=True):
                vals[i] = v
            return apply_fn(jax.tree.unflatten(treedef, vals), x)

        fallback_leaves = [leaves[i] for i in plan.fallback]
        rest = jacobian_contraction(restricted, fallback_leaves, x1, x2, same, chunk)
        k = rest if k is None else k + rest.astype(k.dtype)
    return jnp.zeros((x1.shape[0], x2.shape[0]), dtype) if k is None else k
