"""A thin layer over `diffrax.diffeqsolve` shared by the modewise and direct solvers."""

from __future__ import annotations

import diffrax
import jax.numpy as jnp
import numpy as np


def default_controller(rtol: float, atol: float, norm=None) -> diffrax.PIDController:
    kwargs = {} if norm is None else {"norm": norm}
    return diffrax.PIDController(rtol=rtol, atol=atol, **kwargs)


def integrate(vector_field, y0, ts, args, *, solver, stepsize_controller, dt0, max_steps, throw):
    """Integrate from ts[0] to ts[-1], saving at every ts (ts of length 1 saves y0)."""
    term = diffrax.ODETerm(vector_field)
    return diffrax.diffeqsolve(
        term,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=stepsize_controller,
        max_steps=max_steps,
        throw=throw,
    )


def rhs_evaluations_per_step(solver) -> int | None:
    """Vector-field evaluations per step of an explicit Runge–Kutta solver (FSAL aware)."""
    tableau = getattr(solver, "tableau", None)
    if tableau is None:
        return None
    stages = len(np.asarray(tableau.c)) + 1
    return stages - 1 if tableau.fsal else stages


def solver_stats(sol, solver, *, initial_step_guess: bool) -> dict:
    """Accepted/rejected steps and right-hand-side evaluations of a diffrax run.

    RHS evaluations are counted as (steps × evaluations per step) + 2 for the initial step-size
    guess (when dt0 was not given) + 1 for the first FSAL stage; `tests/test_kato.py` checks
    this count against a callback counter.
    """
    stats = {k: int(np.asarray(v)) for k, v in sol.stats.items() if jnp.ndim(v) == 0}
    per_step = rhs_evaluations_per_step(solver)
    if per_step is not None and "num_steps" in stats:
        fsal = bool(solver.tableau.fsal)
        stats["rhs_evaluations"] = (
            stats["num_steps"] * per_step + 2 * int(initial_step_guess) + int(fsal)
        )
    return stats
