"""The exact Kato modewise system $\\dot c = (W - \\Lambda) c$, integrated with diffrax.

**State and invariant.** The integration carries an orthonormal frame $\\Phi$ and coefficients
$c$ with the invariant $e = \\Phi c$ (docs/theory.md §2.2). For *any* antisymmetric generator
$A$, the pair

    Φ̇ = -Φ A,    ċ = -(ΦᵀMΦ) c + A c

keeps $e = \\Phi c$ an exact solution of $\\dot e = -Me$; the choice of $A$ only decides how
the frame moves. Each right-hand side takes one `eigh` of $M(t)$, $M = V\\Lambda V^T$, forms
the overlap $R = V^T\\Phi$ and the Kato generator of the eigenbasis,
$W_{kj} = (V^T\\dot M V)_{kj}/(\\lambda_k-\\lambda_j)$ between different clusters and 0 inside a
cluster (parallel transport of the cluster's eigenspace, `Clusters`), and uses
$A = R^T W R$:

    Φ̇ = -V W R,    ċ = Rᵀ (W - Λ) R c.

Where no cluster exists and $\\Phi$ follows the eigenbasis, $R$ is a signed permutation and this
is the textbook modewise ODE. Where clusters form, split, change membership or eigenvalues
cross, $R$ carries the rotation between the tracked frame and the eigenbasis, so nothing has to
be re-aligned and no branch is taken: the cost per right-hand side is the same for any
spectrum (one `eigh`, five matrix products, zero modes included) and the result is exact
whatever the cluster threshold, which only trades the stiffness of $1/(\\lambda_k-\\lambda_j)$
against how long a pair is treated as a block.

**Saved outputs** are in the eigenbasis, sorted by descending eigenvalue: eigenvector signs
follow the tracked frame; only where eigenvalues agree to round-off (`Clusters.output_gap`),
the basis is the rotation of the eigenvectors closest to the tracked frame (orthogonal
Procrustes, the parallel-transport gauge) and the saved $W$ is 0 inside. The saved generator
is otherwise the full Kato $W$, even where the transport treated a pair as a block, so that
budgets built from the outputs see the whole coupling of an avoided crossing. Outputs are
computed inside the solve at each saved time (`diffrax.SaveAt(fn=...)`).

**Self-check** (`SelfCheck`, on by default): the state also carries an independent integration
of $\\dot e = -Me$ (one matrix–vector product per right-hand side); a reconstruction $\\Phi c$
that drifts from it beyond tolerance fails the run.

**Operator checks** at every right-hand side: $M$ and $\\dot M$ finite and symmetric,
$\\lambda_{\\min} \\ge -$round-off. An invalid operator ends the solve at once (a diffrax event)
and the error names the time.

Reference: T. Kato, "On the adiabatic theorem of quantum mechanics", J. Phys. Soc. Jpn. 5
(1950) 435.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._checks import (
    check_operator_type,
    check_solver_options,
    check_state,
    describe_operator,
)
from .._integrate import default_controller, integrate, solver_stats, uses_initial_step_guess
from .._solvers import (
    DENSE,
    DIAGONAL,
    default_solver,
    imex_solver,
    largest_eigenvalue,
    time_span,
)
from ..operators import AbstractOperator, FrozenOperator
from .clusters import Clusters
from .frozen import solve_frozen
from .kato_field import KatoState, kato_stiff_part, kato_vector_field, matmul_highest
from .kato_outputs import save_outputs
from .kato_solution import KatoSolution, as_index, relative_gaps
from .self_check import (
    OperatorError,
    PrecisionWarning,
    SelfCheck,
    SelfCheckError,
    describe_mismatch,
)
from .spectral_state import eigh_descending, fix_gauge

__all__ = [
    "KatoState",
    "KatoSolution",
    "PrecisionWarning",
    "kato_vector_field",
    "solve_kato",
]

def _error_norm(error: KatoState):
    # Each component counts on its own: the coefficients must not be diluted by n² frame entries.
    leaves = jax.tree_util.tree_leaves(error)
    return jnp.max(jnp.stack([jnp.sqrt(jnp.mean(x**2)) for x in leaves]))


@eqx.filter_jit
def _solve_kato(
    op, e0, ts, relative_gap, output_gap, reduce, solver, stepsize_controller, dt0, max_steps,
    throw, check_enabled, progress_meter,
):
    m0 = op(ts[0])
    lam0, vec0 = eigh_descending(m0)
    frame0 = fix_gauge(vec0)
    state0 = KatoState(
        frame0,
        matmul_highest(frame0.T, e0[:, None])[:, 0],
        e0 if check_enabled else None,
        jnp.zeros((), e0.dtype),
    )
    e0_norm = jnp.maximum(jnp.linalg.norm(e0), jnp.finfo(e0.dtype).tiny)
    event = diffrax.Event(lambda t, y, args, **kwargs: y.violation > 0)
    return integrate(
        kato_vector_field,
        state0,
        ts,
        (op, relative_gap),
        solver=solver,
        stepsize_controller=stepsize_controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
        save_fn=lambda t, y, _: save_outputs(t, y, (op, output_gap, reduce, e0_norm)),
        event=event,
        progress_meter=progress_meter,
        stiff_part=kato_stiff_part,
    )


def solve_kato(
    op: AbstractOperator,
    e0: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " T"],
    *,
    rtol: float | Float[ArrayLike, ""] | None = None,  # arrays: traced, no recompilation
    atol: float | Float[ArrayLike, ""] | None = None,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    dt0: float | None = None,
    max_steps: int = 100_000,
    throw: bool = True,
    clusters: Clusters | None = None,
    self_check: SelfCheck | None = None,
    reduce: Callable | None = None,
    progress_meter: diffrax.AbstractProgressMeter | None = None,
) -> KatoSolution:
    """Integrate the exact Kato modewise ODE $\\dot c = (W - \\Lambda)c$ (docs/theory.md §2.2).

    **Arguments:**
    - `op`: an operator (`CallableOperator`, `FrozenOperator`, ...) giving $M(t)$.
    - `e0`: (n,) initial residual in the ambient basis, same dtype as `op`.
    - `ts`: (T,) strictly increasing save times; integration runs from `ts[0]` to `ts[-1]`.
    - `rtol`, `atol`: tolerances of the default `diffrax.PIDController` (default by dtype:
      1e-8/1e-10 in float64, 1e-5/1e-7 in float32).
    - `solver`: any diffrax solver. Default: `diffrax.Tsit5()` for short horizons; from
      $\\lambda_{\\max}(t_0)\\,(t_\\text{end} - t_0) \\ge$ `STIFF_HORIZON` the IMEX
      `diffrax.KenCarp4` with the dissipation implicit (`spectral_jax/_solvers.py`), whose
      step count grows with $\\log t$ instead of $\\lambda_{\\max} t$. A `FrozenOperator`
      with neither `solver` nor `stepsize_controller` given takes the closed form
      (`solve_frozen`: one `eigh`, no time stepping).
    - `stepsize_controller`: any diffrax controller (overrides `rtol`/`atol`); `dt0`: first
      step (default: estimated).
    - `clusters`: `Clusters` (which eigenvalues are transported as one block, which pairs are
      reported as degenerate); default `Clusters()`.
    - `self_check`: `SelfCheck` (the independent integration of $\\dot e = -Me$ and its
      tolerance); default `SelfCheck()` (on).
    - `reduce`: optional `f(eigenvalues, coefficients, generator) -> pytree`, applied at each
      saved time inside the solve (e.g. `functools.partial(shell_budget, shells)`); the
      (T, n, n) generator and frames are then not stored.
    - `max_steps`, `throw`: as in diffrax; `throw=False` records a failure in `.error` /
      `.succeeded` instead of raising (for sweeps).
    - `progress_meter`: any diffrax progress meter, e.g. `diffrax.TqdmProgressMeter()`.

    **Returns:** a `KatoSolution`.

    **Raises:** `ValueError`/`TypeError` for bad input (shapes, dtypes, options, an invalid
    $M$ at the ends of the window), `OperatorError` for an invalid $M(t)$ or $\\dot M(t)$ met
    during the solve (naming the time), `SelfCheckError` when the self-check fails (naming the
    time and the modes), diffrax's error when the solver fails; only with `throw=True`.
    """
    check_operator_type(op)
    check_solver_options(rtol=rtol, atol=atol, max_steps=max_steps, dt0=dt0)
    clusters = Clusters() if clusters is None else clusters
    self_check = SelfCheck() if self_check is None else self_check
    if not isinstance(clusters, Clusters):
        raise TypeError(f"clusters must be a sj.Clusters, got {type(clusters).__name__}")
    if not isinstance(self_check, SelfCheck):
        raise TypeError(f"self_check must be a sj.SelfCheck, got {type(self_check).__name__}")
    m_first = check_state(op, e0, ts)
    if isinstance(op, FrozenOperator) and solver is None and stepsize_controller is None:
        return solve_frozen(op, e0, ts, clusters=clusters, reduce=reduce)
    dtype = op.dtype
    e0 = jnp.asarray(e0, dtype)
    ts = jnp.asarray(ts, dtype)
    # Only the dissipation and the self-check are implicit; the frame never is (see _solvers).
    structure = KatoState(DIAGONAL, DIAGONAL, DENSE if self_check.enabled else None, DIAGONAL)
    solver = default_solver(
        solver, lambda: imex_solver(structure),
        lam_max=largest_eigenvalue(m_first), span=time_span(ts),
    )
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, _error_norm, dtype=dtype)
    controller_rtol = getattr(getattr(stepsize_controller, "controller", stepsize_controller),
                              "rtol", None)
    check_rtol = float(np.asarray(controller_rtol)) if controller_rtol is not None else 1e-8
    check_tolerance = self_check.resolve(check_rtol)
    sol = _solve_kato(
        op, e0, ts, clusters.resolve(dtype), clusters.resolve_output(dtype), reduce, solver,
        stepsize_controller, dt0, max_steps, throw, self_check.enabled, progress_meter,
    )
    saved = sol.ys[0]
    final_t, final_state = sol.ts[1][-1], jax.tree_util.tree_map(lambda x: x[-1], sol.ys[1])
    guess = uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0])
    stats = solver_stats(sol, solver, initial_step_guess=guess)

    error = None
    violation = float(final_state.violation)
    if np.isfinite(violation) and violation > 0:
        t_end = float(final_t)
        t_bad = t_end - violation
        problem = describe_operator(op, t_end, with_derivative=True) or describe_operator(
            op, t_bad, with_derivative=True
        )
        error = (
            f"the operator became invalid during the solve, at t ≈ {t_bad:.6g} "
            f"(solve stopped at t = {t_end:.6g}): "
            f"{problem or 'non-finite, non-symmetric or negative'}"
        )
        if throw:
            raise OperatorError(error)
    mismatch = np.asarray(saved.mismatch)
    reached = np.asarray(sol.ts[0]) <= float(final_t)
    # A solver failure (max_steps, ...) is reported by `result`; the check judges finished runs.
    finished = bool(sol.result == diffrax.RESULTS.successful)
    if finished and error is None and self_check.enabled and not np.all(
        mismatch[reached] <= check_tolerance
    ):
        error = describe_mismatch(
            np.asarray(sol.ts[0])[reached], mismatch[reached],
            np.asarray(saved.mismatch_mode)[reached], check_tolerance,
        )
        if throw:
            raise SelfCheckError(error)

    gaps = relative_gaps(saved.eigenvalues)
    if np.finfo(dtype).bits < 64 and error is None:
        smallest = float(jnp.min(gaps))
        if smallest < clusters.resolve(dtype):
            warnings.warn(
                f"solve_kato runs in {np.dtype(dtype).name} and meets relative eigenvalue gaps of "
                f"{smallest:.1e}, below what it resolves: modes closer than that are only known "
                "as clusters. Enable float64 (jax.config.update('jax_enable_x64', True)) for "
                "individual modes.",
                PrecisionWarning,
                stacklevel=2,
            )
    return KatoSolution(
        ts=sol.ts[0],
        eigenvalues=saved.eigenvalues,
        coefficients=saved.coefficients,
        generator=saved.generator,
        frames=saved.frames,
        residuals=saved.residuals,
        reference_coefficients=saved.reference_coefficients,
        reduced=saved.reduced,
        reduced_reference=saved.reduced_reference,
        eigenvalue_rates=saved.eigenvalue_rates,
        order=as_index(saved.order),
        relative_gaps=gaps,
        min_gap=jnp.min(gaps, axis=1),
        min_gap_index=jnp.argmin(gaps, axis=1),
        self_check_mismatch=saved.mismatch,
        self_check_mode=as_index(saved.mismatch_mode),
        stats=stats,
        result=sol.result,
        error=error,
        self_check_tolerance=check_tolerance,
        degeneracy_threshold=clusters.report_gap,
    )
