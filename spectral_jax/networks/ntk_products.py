"""The two eNTK implementations that work for any network: Jacobian contraction (the
reference) and NTK-vector products (Novak et al., "Fast finite width neural tangent kernel",
ICML 2022, §3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._apply import scalar_outputs
from ._blocks import pairwise_blocks

__all__ = ["jacobian_contraction", "ntk_vector_products"]


def _flat_jacobian(apply_fn, params, x):
    """J (n, P) of the batch outputs w.r.t. all parameter leaves, by reverse mode."""
    n = x.shape[0]
    jac = jax.jacrev(lambda p: scalar_outputs(apply_fn(p, x), n, "empirical_ntk"))(params)
    leaves = [leaf.reshape(n, -1) for leaf in jax.tree.leaves(jac)]
    return jnp.concatenate(leaves, axis=1)


def jacobian_contraction(apply_fn, params, x1, x2, same: bool, chunk: int | None):
    """$J_1 J_2^T$ with $J$ materialised for one block of inputs at a time."""

    def jacobian(x):
        return _flat_jacobian(apply_fn, params, x)

    if chunk is None:
        j1 = jacobian(x1)
        return j1 @ (j1 if same else jacobian(x2)).T
    # One Jacobian block per row of K held at a time, plus one per column block.
    return pairwise_blocks(lambda ja, xb: ja @ jacobian(xb).T, x1, x2, chunk, prepare=jacobian)


def ntk_vector_products(apply_fn, params, x1, x2, chunk: int | None):
    """Column j of $K$ is $J_1 (J_2^T e_j)$: one VJP then one JVP, vmapped over cotangents."""

    def block(xa, xb):
        na, nb = xa.shape[0], xb.shape[0]
        fa = lambda p: scalar_outputs(apply_fn(p, xa), na, "empirical_ntk")  # noqa: E731
        fb = lambda p: scalar_outputs(apply_fn(p, xb), nb, "empirical_ntk")  # noqa: E731
        out_b, vjp_b = jax.vjp(fb, params)

        def column(cotangent):
            (tangent,) = vjp_b(cotangent)  # J_b^T e_j: one parameter-sized vector
            return jax.jvp(fa, (params,), (tangent,))[1]  # J_a J_b^T e_j

        eye = jnp.eye(nb, dtype=out_b.dtype)
        return jax.vmap(column)(eye).T  # (na, nb)

    if chunk is None:
        return block(x1, x2)
    return pairwise_blocks(block, x1, x2, chunk)
