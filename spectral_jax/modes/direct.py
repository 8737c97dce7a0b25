"""The reference solver: $\\dot e = -M(t) e$ in the ambient basis, with diffrax."""

from __future__ import annotations

from typing import NamedTuple

import diffrax
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import (
    check_operator_type,
    check_solver_options,
    check_state,
    describe_operator,
    operator_is_invalid,
)
from .._integrate import (
    default_controller,
    integrate,
    solver_stats,
    uses_initial_step_guess,
)
from .._solvers import (
    DENSE,
    DIAGONAL,
    default_solver,
    implicit_solver,
    largest_eigenvalue,
    time_span,
)
from ..operators import AbstractOperator
from .self_check import OperatorError

__all__ = ["DirectSolution", "solve_direct"]


class DirectSolution(eqx.Module):
    """Result of `solve_direct`: `ts` (T,), `residuals` (T, n), `stats`, `result`, `error`."""

    ts: Float[Array, " T"]
    residuals: Float[Array, "T n"]
    stats: dict
    result: diffrax.RESULTS
    error: str | None = eqx.field(static=True, default=None)

    @property
    def loss(self) -> Float[Array, " T"]:
        """$L = \\|e\\|^2/(2n)$."""
        return jnp.sum(self.residuals**2, axis=-1) / (2 * self.residuals.shape[-1])

    @property
    def succeeded(self) -> bool:
        return self.error is None and bool(self.result == diffrax.RESULTS.successful)


class _DirectState(NamedTuple):
    residual: Float[Array, " n"]
    violation: Float[Array, ""]  # time spent with an invalid operator (> 0 ends the solve)


def _direct_vector_field(t, state: _DirectState, op):
    m = op(t)
    # Finite and symmetric at every evaluation (O(n²)); positivity needs an eigh, which this
    # reference solver does not pay for: it is checked at the ends of the window only.
    invalid = operator_is_invalid(m)
    e_dot = -(jnp.where(invalid, 0.0, m) @ state.residual)
    return _DirectState(jnp.where(invalid, 0.0, e_dot), invalid.astype(state.violation.dtype))


@eqx.filter_jit
def _solve_direct(op, e0, ts, solver, stepsize_controller, dt0, max_steps, throw, progress_meter):
    return integrate(
        _direct_vector_field,
        _DirectState(e0, jnp.zeros((), e0.dtype)),
        ts,
        op,
        solver=solver,
        stepsize_controller=stepsize_controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
        save_fn=lambda t, y, _: y.residual,
        event=diffrax.Event(lambda t, y, args, **kwargs: y.violation > 0),
        progress_meter=progress_meter,
    )


def solve_direct(
    op: AbstractOperator,
    e0: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " T"],
    *,
    rtol: float | Float[ArrayLike, ""] | None = None,
    atol: float | Float[ArrayLike, ""] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
    progress_meter: diffrax.AbstractProgressMeter | None = None,
) -> DirectSolution:
    """Integrate the function-space gradient flow $\\dot e = -M(t)e$ (docs/theory.md §2.1).

    The reference that `solve_kato` must reproduce. Arguments as in `solve_kato`; the default
    solver is `diffrax.Tsit5()` for short horizons and `diffrax.Kvaerno5` (dense Jacobian
    $-M$) from $\\lambda_{\\max}(t_0)\\,(t_\\text{end}-t_0) \\ge$ `STIFF_HORIZON`.
    """
    check_operator_type(op)
    check_solver_options(rtol=rtol, atol=atol, max_steps=max_steps, dt0=dt0)
    m_first = check_state(op, e0, ts)
    e0 = jnp.asarray(e0, op.dtype)
    ts = jnp.asarray(ts, op.dtype)
    # Long horizons: Kvaerno5 with the dense n×n Jacobian -M (see spectral_jax/_solvers.py).
    solver = default_solver(
        solver, lambda: implicit_solver(_DirectState(DENSE, DIAGONAL)),
        lam_max=largest_eigenvalue(m_first), span=time_span(ts),
    )
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, dtype=op.dtype)
    sol = _solve_direct(
        op, e0, ts, solver, stepsize_controller, dt0, max_steps, throw, progress_meter
    )
    guess = uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0])
    error = None
    violation = float(sol.ys[1].violation[-1])
    if violation > 0:
        t_end = float(sol.ts[1][-1])
        problem = describe_operator(op, t_end, with_derivative=False)
        error = (
            f"the operator became invalid during the solve, at t ≈ {t_end - violation:.6g} "
            f"(solve stopped at t = {t_end:.6g}): {problem or 'non-finite or non-symmetric'}"
        )
        if throw:
            raise OperatorError(error)
    return DirectSolution(
        ts=sol.ts[0],
        residuals=sol.ys[0],
        stats=solver_stats(sol, solver, initial_step_guess=guess),
        result=sol.result,
        error=error,
    )
