"""A lineax solver for Jacobians whose structure is known: what makes implicit steps cheap.

Diffrax's implicit and IMEX solvers (Kvaerno, KenCarp) solve a linear system with the Jacobian
of the (implicit part of the) vector field at every step. By default that Jacobian is formed
densely, one forward-mode pass per entry of the state, then LU-factorised. For our systems the
structure is known in advance:

- the dissipation $-\\Lambda c$ of the Kato coefficients and of the shell energies is
  *diagonal*;
- the planted transport chain $-\\Lambda c - h A_0 c$ is *tridiagonal*;
- the self-check's $-M e$ is *dense* but only n×n;
- the frame of the Kato state does not enter the implicit part at all (identity block).

`StructuredJacobianSolver(structure)` takes one `JacobianStructure` per leaf of the state and
assumes the Jacobian has no blocks between leaves. It extracts each block from a few
Jacobian–vector products (one probe for every diagonal leaf together, three colourings for
tridiagonal leaves, one probe per entry only for dense leaves) and solves leaf by leaf. For a
2·10⁶-mode chain that is three forward passes and one `tridiagonal_solve` per step instead of
a (2·10⁶)² matrix.

The structure is a promise: a wrong one gives a wrong Newton matrix. Diffrax's chord iteration
then converges slowly or not at all, and the step is rejected; it never gives a silently wrong
step, because the nonlinear residual itself is always evaluated exactly.
"""

from __future__ import annotations

import enum
import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import lineax as lx
from jax import lax

__all__ = ["JacobianStructure", "StructuredJacobianSolver"]


class JacobianStructure(enum.Enum):
    """Structure of one leaf's block of the Jacobian."""

    DIAGONAL = "diagonal"
    TRIDIAGONAL = "tridiagonal"  # 1-D leaves only
    DENSE = "dense"  # one probe per entry: only for small leaves


def _leaves_and_kinds(structure, in_structure):
    leaves, treedef = jax.tree_util.tree_flatten(in_structure)
    if isinstance(structure, JacobianStructure):
        kinds = [structure] * len(leaves)
    else:
        kinds = treedef.flatten_up_to(structure)
    for leaf, kind in zip(leaves, kinds, strict=True):
        if not isinstance(kind, JacobianStructure):
            raise TypeError(f"structure leaves must be JacobianStructure, got {kind!r}")
        if kind is JacobianStructure.TRIDIAGONAL and len(leaf.shape) != 1:
            raise ValueError(f"a TRIDIAGONAL block needs a 1-D leaf, got shape {leaf.shape}")
    return leaves, treedef, kinds


def _probe(leaves, treedef, fill):
    """A pytree of zeros, except the leaves for which `fill(index, leaf)` gives an array."""
    out = []
    for i, leaf in enumerate(leaves):
        value = fill(i, leaf)
        out.append(jnp.zeros(leaf.shape, leaf.dtype) if value is None else value)
    return jax.tree_util.tree_unflatten(treedef, out)


def _blocks(operator, structure):
    """Per leaf, arrays only (the state passes through `lax.stop_gradient`): a diagonal `d`,
    a tridiagonal `(lower, diag, upper)` or a dense `(lu, pivots)`."""
    leaves, treedef, kinds = _leaves_and_kinds(structure, operator.in_structure())
    colour_count = 3 if JacobianStructure.TRIDIAGONAL in kinds else 1
    banded = [k is not JacobianStructure.DENSE for k in kinds]

    def colour(r):
        def fill(i, leaf):
            if not banded[i]:
                return None
            if kinds[i] is JacobianStructure.DIAGONAL:
                return jnp.full(leaf.shape, 1.0 if r == 0 else 0.0, leaf.dtype)
            return (jnp.arange(leaf.shape[0]) % 3 == r).astype(leaf.dtype)

        return jax.tree_util.tree_leaves(operator.mv(_probe(leaves, treedef, fill)))

    colours = [colour(r) for r in range(colour_count)] if any(banded) else []
    blocks = []
    for i, (leaf, kind) in enumerate(zip(leaves, kinds, strict=True)):
        if kind is JacobianStructure.DIAGONAL:
            blocks.append(colours[0][i])
        elif kind is JacobianStructure.TRIDIAGONAL:
            rows = jnp.arange(leaf.shape[0])
            by_colour = jnp.stack([c[i] for c in colours])  # (3, m)
            diag = by_colour[rows % 3, rows]
            upper = by_colour[(rows + 1) % 3, rows].at[-1].set(0.0)  # J[i, i+1]
            lower = by_colour[(rows - 1) % 3, rows].at[0].set(0.0)  # J[i, i-1]
            blocks.append((lower, diag, upper))
        else:
            size = math.prod(leaf.shape)

            def column(e, i=i, leaf=leaf):
                fill = lambda j, lf: e.reshape(leaf.shape) if j == i else None  # noqa: E731
                return jax.tree_util.tree_leaves(operator.mv(_probe(leaves, treedef, fill)))[i]

            columns = jax.vmap(column)(jnp.eye(size, dtype=leaf.dtype))  # (entry, leaf...)
            blocks.append(jsl.lu_factor(columns.reshape(size, size).T))
    return blocks


def _solve_block(kind, block, rhs, transpose):
    if kind is JacobianStructure.DIAGONAL:
        return rhs / block
    if kind is JacobianStructure.TRIDIAGONAL:
        lower, diag, upper = block
        # Jᵀ swaps the off-diagonals, shifted by one row.
        lower, upper = (
            jnp.where(transpose, jnp.roll(upper, 1), lower),
            jnp.where(transpose, jnp.roll(lower, -1), upper),
        )
        return lax.linalg.tridiagonal_solve(lower, diag, upper, rhs[:, None])[:, 0]
    flat = rhs.reshape(-1)
    solution = lax.cond(
        transpose,
        lambda: jsl.lu_solve(block, flat, trans=1),
        lambda: jsl.lu_solve(block, flat, trans=0),
    )
    return solution.reshape(rhs.shape)


class StructuredJacobianSolver(lx.AbstractLinearSolver):
    """Linear solves with a block-diagonal Jacobian of known per-leaf structure.

    `structure`: one `JacobianStructure` for every leaf, or a pytree of them matching the
    state. Use it as the linear solver of diffrax's root finder, e.g.
    `diffrax.Kvaerno5(root_finder=diffrax.VeryChord(rtol, atol,
    linear_solver=StructuredJacobianSolver(JacobianStructure.TRIDIAGONAL)))`.
    """

    structure: Any

    def init(self, operator, options):
        del options
        return _blocks(operator, self.structure), jnp.asarray(False)

    def compute(self, state, vector, options):
        del options
        blocks, transpose = state
        _, treedef, kinds = _leaves_and_kinds(self.structure, vector)
        rhs = treedef.flatten_up_to(vector)
        solution = [
            _solve_block(k, b, r, transpose) for k, b, r in zip(kinds, blocks, rhs, strict=True)
        ]
        return jax.tree_util.tree_unflatten(treedef, solution), lx.RESULTS.successful, {}

    def transpose(self, state, options):
        blocks, transpose = state
        return (blocks, ~transpose), options

    def conj(self, state, options):
        return state, options  # real blocks only

    def assume_full_rank(self):
        return True
