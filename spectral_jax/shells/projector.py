"""Gauge-free shell budget: spectral projectors instead of individual modes (docs/theory.md §2.3).

With $P_s$ the spectral projector of $M$ onto shell s,

$$E_s = e^T P_s e, \\qquad
\\frac{dE_s}{dt} = -2\\,e^T P_s M e + e^T \\dot P_s e, \\qquad
\\dot P_s = \\sum_{k\\in s,\\ j\\notin s} \\frac{G_{kj}}{\\lambda_k - \\lambda_j}
            (\\phi_k\\phi_j^T + \\phi_j\\phi_k^T),$$

$G = \\Phi^T\\dot M\\Phi$. Everything is computed from $(M, \\dot M, e)$ at one time: no
tracked frame, no gauge, no solver state. Only gaps between modes of *different* shells appear
in denominators (pairs inside one shell are masked before dividing), so the budget is finite
and exact when modes inside a shell are degenerate, nearly degenerate or swap order; the
result does not depend on the eigenvector signs or on the basis chosen inside a degenerate
eigenspace.

The inter-shell transfer is split pair by pair exactly like the modewise form
(`spectral_jax.shells.shell_budget`): $T_{ss'} = \\sum_{k\\in s, j\\in s'} 2 G_{kj} c_k c_j /
(\\lambda_k - \\lambda_j)$, $c = \\Phi^T e$, so that $\\sum_{s'} T_{ss'} = e^T\\dot P_s e$ and the
two forms can be compared entry by entry.

Reference for $\\dot P$: T. Kato, *Perturbation Theory for Linear Operators* (1966), II §5.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..modes.spectral_state import eigh_descending
from ..operators.base import AbstractOperator
from .budget import ShellBudget, antisymmetric_shell_sum
from .grid import LogShells

__all__ = ["projector_budget", "projector_budget_along", "shell_projectors"]


def masked_coupling(lam, g, masked):
    """$G_{kj}/(\\lambda_k-\\lambda_j)$, zero on the `masked` pairs (divided only off them)."""
    gaps = lam[:, None] - lam[None, :]
    return jnp.where(masked, jnp.zeros_like(g), g / jnp.where(masked, 1.0, gaps))


def _inter_shell_coupling(shells, matrix, derivative):
    """Eigenpairs, membership and $G_{kj}/(\\lambda_k-\\lambda_j)$ on inter-shell pairs only."""
    lam, frame = eigh_descending(matrix)
    g = frame.T @ derivative @ frame
    g = 0.5 * (g + g.T)  # exact symmetry → the coupling below is exactly antisymmetric
    member = shells.membership(lam)
    same_shell = (member @ member.T) > 0.5
    return lam, frame, member, masked_coupling(lam, g, same_shell)


def _projector_budget_single(shells, matrix, derivative, residual):
    lam, frame, member, coupling = _inter_shell_coupling(shells, matrix, derivative)
    c = frame.T @ residual
    transfer = antisymmetric_shell_sum(2.0 * coupling * jnp.outer(c, c), member)
    return ShellBudget.from_modes(member, lam, c, transfer)


@eqx.filter_jit
def _projector_budget(shells, matrix, derivative, residual):
    fn = _projector_budget_single
    for _ in range(residual.ndim - 1):
        fn = jax.vmap(fn, in_axes=(None, 0, 0, 0))
    return fn(shells, matrix, derivative, residual)


def _check(matrix, derivative, residual, name):
    matrix, derivative, residual = map(jnp.asarray, (matrix, derivative, residual))
    n = residual.shape[-1] if residual.ndim else 0
    if (
        residual.ndim < 1
        or matrix.shape != (*residual.shape, n)
        or derivative.shape != matrix.shape
    ):
        raise ValueError(
            f"{name}: expected matrix (..., n, n), derivative (..., n, n) and residual "
            f"(..., n); got {matrix.shape}, {derivative.shape}, {residual.shape}"
        )
    dtypes = {matrix.dtype, derivative.dtype, residual.dtype}
    if len(dtypes) != 1 or not jnp.issubdtype(matrix.dtype, jnp.floating):
        raise TypeError(
            f"{name}: matrix, derivative and residual must share one floating dtype; got "
            f"{matrix.dtype}, {derivative.dtype}, {residual.dtype}"
        )
    return matrix, derivative, residual


def projector_budget(
    shells: LogShells,
    matrix: Float[ArrayLike, "*T n n"],
    derivative: Float[ArrayLike, "*T n n"],
    residual: Float[ArrayLike, "*T n"],
) -> ShellBudget:
    """Shell budget in the gauge-free projector form, from $(M, \\dot M, e)$.

    **Arguments:**
    - `shells`: a `LogShells`.
    - `matrix`: (..., n, n) symmetric $M$; `derivative`: (..., n, n) $\\dot M$ (from AD or a
      smooth interpolant); `residual`: (..., n) $e$ in the ambient basis. Any number of leading
      axes are vmapped (compiled once per shape).

    **Returns:** a `ShellBudget`: `energy` $e^TP_se$, `dissipation` $2e^TP_sMe$, `transfer`
    (inter-shell pairs only; $\\sum_{s'}T_{ss'} = e^T\\dot P_se$), `flux`, and `.rate`
    $= -2e^TP_sMe + e^T\\dot P_se$.

    **Raises:** `ValueError` on mismatched shapes, `TypeError` on mixed or non-float dtypes.
    """
    matrix, derivative, residual = _check(matrix, derivative, residual, "projector_budget")
    return _projector_budget(shells, matrix, derivative, residual)


@eqx.filter_jit
def _along(shells, op, ts, residuals):
    m, dm = jax.vmap(op.value_and_derivative)(ts)
    return _projector_budget(shells, m, dm, residuals)


def projector_budget_along(
    shells: LogShells,
    op: AbstractOperator,
    ts: Float[ArrayLike, " T"],
    residuals: Float[ArrayLike, "T n"],
) -> ShellBudget:
    """`projector_budget` at times `ts` of an operator, e.g. along `KatoSolution.residuals`.

    $\\dot M$ comes from `op.value_and_derivative` (forward-mode AD or closed form).
    """
    ts = jnp.asarray(ts, op.dtype)
    residuals = jnp.asarray(residuals)
    n = op.shape[0]
    if ts.ndim != 1 or residuals.shape != (ts.shape[0], n):
        raise ValueError(
            f"projector_budget_along: expected ts (T,) and residuals (T, {n}); got {ts.shape} "
            f"and {residuals.shape}"
        )
    if residuals.dtype != op.dtype:
        raise TypeError(f"residuals are {residuals.dtype} but the operator is {op.dtype}")
    return _along(shells, op, ts, residuals)


def _projectors_single(shells, matrix, derivative):
    _, frame, member, coupling = _inter_shell_coupling(shells, matrix, derivative)
    proj = jnp.einsum("ks,ik,jk->sij", member, frame, frame)
    # In the eigenbasis, Ṗ_s has entries W̃_kj on (k∈s, j∉s) and their mirror images.
    outside = 1.0 - member
    mask = jnp.einsum("ks,js->skj", member, outside)
    block = mask * coupling[None]
    block = block + jnp.swapaxes(block, -1, -2)
    proj_rate = jnp.einsum("ik,skj,lj->sil", frame, block, frame)
    return proj, proj_rate


@eqx.filter_jit
def shell_projectors(
    shells: LogShells, matrix: Float[ArrayLike, "n n"], derivative: Float[ArrayLike, "n n"]
) -> tuple[Float[Array, "shells n n"], Float[Array, "shells n n"]]:
    """The shell projectors $P_s$ and their time derivatives $\\dot P_s$ as matrices.

    O(S n³): for checks and small problems; `projector_budget` never forms them.
    """
    return _projectors_single(shells, jnp.asarray(matrix), jnp.asarray(derivative))
