"""A thin layer over `diffrax.diffeqsolve` shared by the modewise and direct solvers."""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ._solvers import is_imex


def default_tolerances(dtype) -> tuple[float, float]:
    """(rtol, atol) used when none are given: 1e-8/1e-10 in float64, 1e-5/1e-7 in float32.

    Float32 cannot meet a relative tolerance near its epsilon (1.2e-7); asking for 1e-8 there
    costs hundreds of times more steps for no accuracy.
    """
    return (1e-8, 1e-10) if np.finfo(dtype).bits >= 64 else (1e-5, 1e-7)


def default_controller(rtol, atol, norm=None, *, dtype=np.float64) -> diffrax.PIDController:
    """A PID controller; `rtol`/`atol` of None take `default_tolerances(dtype)`."""
    default_rtol, default_atol = default_tolerances(dtype)
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    kwargs = {} if norm is None else {"norm": norm}
    # Arrays, not Python floats: under `filter_jit` floats are static and every new tolerance
    # would recompile the whole solve.
    rtol, atol = (jnp.asarray(x, dtype=dtype) for x in (rtol, atol))
    return diffrax.PIDController(rtol=rtol, atol=atol, **kwargs)


def _tolerances(controller):
    """(rtol, atol, norm) of an adaptive controller (also through `ClipStepSizeController`)."""
    inner = getattr(controller, "controller", controller)
    rtol, atol = getattr(inner, "rtol", None), getattr(inner, "atol", None)
    if rtol is None or atol is None:
        return None
    return rtol, atol, getattr(inner, "norm", _rms)


def _rms(tree):
    leaves = [jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.sqrt(jnp.mean(jnp.concatenate(leaves) ** 2))


def _error_order(solver, stepsize_controller):
    inner = getattr(stepsize_controller, "controller", stepsize_controller)
    order = getattr(inner, "error_order", None)
    return order if order is not None else solver.error_order(diffrax.ODETerm(lambda t, y, a: y))


def uses_initial_step_guess(solver, stepsize_controller, dt0, num_times: int) -> bool:
    """Whether `integrate` chooses the first step itself (two vector-field evaluations)."""
    return (
        dt0 is None
        and num_times > 1
        and _tolerances(stepsize_controller) is not None
        and _error_order(solver, stepsize_controller) is not None
    )


def initial_step(vector_field, t0, t1, y0, args, *, error_order, rtol, atol, norm):
    """First step size from two vector-field evaluations.

    Hairer, Nørsett & Wanner, "Solving Ordinary Differential Equations I", §II.4: a step whose
    local error is about 1% of the tolerance, capped at 100× an explicit-Euler probe and at
    `t1 - t0`. Diffrax has this heuristic too, but inside `diffeqsolve` it sees a wrapped term
    and falls back to a fixed first step of 0.01 whatever the time scale of the problem;
    a first step far too large gets rejected, and every rejected first attempt of an FSAL
    solver costs an evaluation that diffrax's statistics do not show.
    """
    tmap = jax.tree_util.tree_map

    def scaled(tree):
        return tmap(lambda x, y: x / (atol + rtol * jnp.abs(y)), tree, y0)

    def euler_probe(f0):
        d0, d1 = norm(scaled(y0)), norm(scaled(f0))
        small = (d0 < 1e-5) | (d1 < 1e-5)
        h0 = jnp.where(small, 1e-6, 0.01 * d0 / jnp.where(small, 1.0, d1))
        return jnp.minimum(h0, t1 - t0), d1

    # The two evaluations run in a scan of length 2, so the vector field (an eigh and more, for
    # the Kato system) is traced and compiled once, not twice.
    def body(carry, index):
        t, y, _, _ = carry
        f = vector_field(t, y, args)
        h0, _ = euler_probe(f)
        probe = (t0 + h0, tmap(lambda a, b: a + h0 * b, y0, f), f, h0)
        carry = tmap(lambda new, old: jnp.where(index == 0, new, old), probe, carry)
        return carry, f

    t0 = jnp.asarray(t0)
    init = (t0, y0, tmap(jnp.zeros_like, y0), jnp.zeros_like(t0))
    (_, _, f0, h0), fs = jax.lax.scan(body, init, jnp.arange(2))
    f1 = tmap(lambda x: x[1], fs)
    _, d1 = euler_probe(f0)
    d2 = norm(scaled(tmap(lambda a, b: a - b, f1, f0))) / h0
    max_d = jnp.maximum(d1, d2)
    h1 = jnp.where(
        max_d <= 1e-15,
        jnp.maximum(1e-6, 1e-3 * h0),
        (0.01 / jnp.where(max_d <= 1e-15, 1.0, max_d)) ** (1.0 / error_order),
    )
    return jnp.minimum(jnp.minimum(100.0 * h0, h1), t1 - t0)


def integrate(
    vector_field,
    y0,
    ts,
    args,
    *,
    solver,
    stepsize_controller,
    dt0,
    max_steps,
    throw,
    save_fn=None,
    event=None,
    progress_meter=None,
    stiff_part=None,
):
    """Integrate from ts[0] to ts[-1], saving at every ts (ts of length 1 saves y0).

    The one route into `diffrax.diffeqsolve` for every solver of the package.

    - `save_fn(t, y, args)`: what to keep at each saved time, computed inside the solve
      (`diffrax.SaveAt(ts=..., fn=...)`), so that large intermediate states never reach memory
      at every saved time. Default: the state itself.
    - `event`: a `diffrax.Event` that may end the solve early. With an event, `sol.ts` and
      `sol.ys` are pairs `(saved at ts, saved at the final time)`, the second one the raw state.
    - `progress_meter`: any `diffrax.AbstractProgressMeter` (e.g. `diffrax.TqdmProgressMeter()`).
    - `stiff_part(t, y, args)`: the part of `vector_field` an IMEX solver (`diffrax.KenCarp4`)
      treats implicitly; the rest, `vector_field - stiff_part`, is explicit. Other solvers
      integrate `vector_field` whole.

    With an adaptive controller and `dt0=None` the first step comes from `initial_step`.
    """
    if is_imex(solver):
        if stiff_part is None:
            raise TypeError(
                f"{type(solver).__name__} is an IMEX solver and this system has no stiff part "
                "declared; use an explicit or fully implicit solver (Tsit5, Kvaerno5)"
            )

        def explicit_part(t, y, args):
            full, stiff = vector_field(t, y, args), stiff_part(t, y, args)
            return jax.tree_util.tree_map(lambda a, b: a - b, full, stiff)

        term = diffrax.MultiTerm(diffrax.ODETerm(explicit_part), diffrax.ODETerm(stiff_part))
    else:
        term = diffrax.ODETerm(vector_field)
    if uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0]):
        rtol, atol, norm = _tolerances(stepsize_controller)
        dt0 = initial_step(vector_field, ts[0], ts[-1], y0, args,
                           error_order=_error_order(solver, stepsize_controller),
                           rtol=rtol, atol=atol, norm=norm)
    at_ts = {"ts": ts} if save_fn is None else {"ts": ts, "fn": save_fn}
    if event is None:
        saveat = diffrax.SaveAt(**at_ts)
    else:
        saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(**at_ts), diffrax.SubSaveAt(t1=True)])
    kwargs = {} if progress_meter is None else {"progress_meter": progress_meter}
    return diffrax.diffeqsolve(
        term,
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=saveat,
        stepsize_controller=stepsize_controller,
        max_steps=max_steps,
        throw=throw,
        event=event,
        **kwargs,
    )


def rhs_evaluations_per_step(solver) -> int | None:
    """Vector-field evaluations per step of an explicit Runge–Kutta solver (FSAL aware).

    A tableau with `s` stages stores `c` for stages 2..s, hence `len(c) + 1` stages; an FSAL
    tableau reuses the last stage of the previous step as the first stage of the next.
    """
    tableau = getattr(solver, "tableau", None)
    if tableau is None or not hasattr(tableau, "c"):
        return None
    stages = len(np.asarray(tableau.c)) + 1
    return stages - 1 if tableau.fsal else stages


def solver_stats(sol, solver, *, initial_step_guess: bool = False) -> dict:
    """Accepted/rejected steps and right-hand-side evaluations of a diffrax run.

    `rhs_evaluations` = (accepted + rejected steps) × evaluations per step, + 1 for an FSAL
    solver (its first step evaluates the first stage; later steps reuse the previous last
    stage), + 2 when `integrate` chose the first step (`initial_step_guess`, see
    `uses_initial_step_guess`). Exact unless an FSAL solver rejects its very first step:
    each rejected first attempt costs one more evaluation, which diffrax's statistics do
    not record (rare with `initial_step`). `tests/test_kato.py` checks the count against a
    callback counter.
    """
    stats = {k: int(np.asarray(v)) for k, v in sol.stats.items() if jnp.ndim(v) == 0}
    per_step = rhs_evaluations_per_step(solver)
    if per_step is not None and "num_steps" in stats:
        fsal = bool(solver.tableau.fsal)
        stats["rhs_evaluations"] = (
            stats["num_steps"] * per_step + int(fsal) + 2 * int(initial_step_guess)
        )
    return stats
