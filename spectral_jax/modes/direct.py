"""The reference solver: $\\dot e = -M(t) e$ in the ambient basis, with diffrax."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._integrate import (
    default_controller,
    integrate,
    solver_stats,
    uses_initial_step_guess,
)
from .._checks import check_state
from ..operators.core import AbstractOperator

__all__ = ["DirectSolution", "solve_direct"]


class DirectSolution(eqx.Module):
    """Result of `solve_direct`: `ts` (T,), `residuals` (T, n), `stats`, `result`."""

    ts: Float[Array, " T"]
    residuals: Float[Array, "T n"]
    stats: dict
    result: diffrax.RESULTS

    @property
    def loss(self) -> Float[Array, " T"]:
        """$L = \\|e\\|^2/(2n)$."""
        return jnp.sum(self.residuals**2, axis=-1) / (2 * self.residuals.shape[-1])

    @property
    def succeeded(self) -> bool:
        return bool(self.result == diffrax.RESULTS.successful)


def _direct_vector_field(t, e, op):
    return -(op(t) @ e)


@eqx.filter_jit
def _solve_direct(op, e0, ts, solver, stepsize_controller, dt0, max_steps, throw):
    return integrate(
        _direct_vector_field,
        e0,
        ts,
        op,
        solver=solver,
        stepsize_controller=stepsize_controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
    )


def solve_direct(
    op: AbstractOperator,
    e0: Float[Array, " n"],
    ts: Float[Array, " T"],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
) -> DirectSolution:
    """Integrate the function-space gradient flow $\\dot e = -M(t)e$ (docs/theory.md §2.1).

    The reference that `solve_kato` must reproduce. Arguments as in `solve_kato`.
    """
    check_state(op, e0, ts)
    e0 = jnp.asarray(e0, op.dtype)
    ts = jnp.asarray(ts, op.dtype)
    solver = diffrax.Tsit5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, dtype=op.dtype)
    sol = _solve_direct(op, e0, ts, solver, stepsize_controller, dt0, max_steps, throw)
    guess = uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0])
    return DirectSolution(
        ts=sol.ts,
        residuals=sol.ys,
        stats=solver_stats(sol, solver, initial_step_guess=guess),
        result=sol.result,
    )
