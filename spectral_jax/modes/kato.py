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
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._checks import (
    check_operator_type,
    check_solver_options,
    check_state,
    describe_operator,
    operator_is_invalid,
)
from .._integrate import default_controller, integrate, solver_stats, uses_initial_step_guess
from ..operators import AbstractOperator
from .clusters import Clusters, same_cluster
from .self_check import OperatorError, SelfCheck, SelfCheckError, describe_mismatch
from .spectral_state import eigh_descending, fix_gauge

__all__ = [
    "KatoState",
    "KatoSolution",
    "PrecisionWarning",
    "kato_vector_field",
    "solve_kato",
]

_HIGHEST = jax.lax.Precision.HIGHEST


def _mm(a, b):
    # Full precision even where float32 products default to reduced precision (accelerators).
    return jnp.matmul(a, b, precision=_HIGHEST)


class PrecisionWarning(UserWarning):
    """A solve runs in a precision that cannot resolve the spectrum it meets."""


class KatoState(NamedTuple):
    frame: Float[Array, "n n"]  # tracked Φ; e = Φ c
    coefficients: Float[Array, " n"]
    reference: Float[Array, " n"] | None  # independent e(t) (self-check), None when disabled
    violation: Float[Array, ""]  # time spent with an invalid operator (> 0 ends the solve)


def cluster_generator(
    projected_derivative: Float[Array, "n n"], eigenvalues: Float[Array, " n"], relative_gap
) -> Float[Array, "n n"]:
    """$W_{kj} = G_{kj}/(\\lambda_k-\\lambda_j)$ between clusters, 0 inside (antisymmetric)."""
    g = 0.5 * (projected_derivative + projected_derivative.T)
    inside = same_cluster(eigenvalues, relative_gap)
    gaps = eigenvalues[:, None] - eigenvalues[None, :]
    return jnp.where(inside, 0.0, g / jnp.where(inside, 1.0, gaps)).astype(g.dtype)


def kato_vector_field(t, state: KatoState, args) -> KatoState:
    """$(\\dot\\Phi, \\dot c, \\dot e_\\text{ref}, \\text{violation})$ at time t.

    `args = (op, relative_gap)`; see the module docstring for the equations.
    """
    op, relative_gap = args
    m, dm = op.value_and_derivative(t)
    invalid = operator_is_invalid(m, dm)
    m, dm = (jnp.where(invalid, 0.0, x) for x in (m, dm))  # keep eigh finite; the step is void
    lam, vec = eigh_descending(m)
    invalid = invalid | operator_is_invalid(m, None, lam)
    overlap = _mm(vec.T, state.frame)  # R = VᵀΦ
    w = cluster_generator(_mm(_mm(vec.T, dm), vec), lam, relative_gap)
    d = overlap @ state.coefficients  # e in the eigenbasis
    c_dot = overlap.T @ (w @ d - lam * d)
    frame_dot = -_mm(_mm(vec, w), overlap)
    ref_dot = None if state.reference is None else -(m @ state.reference)

    def void(x):  # an invalid operator moves nothing but the violation clock
        return None if x is None else jnp.where(invalid, jnp.zeros_like(x), x)

    return KatoState(
        void(frame_dot), void(c_dot), void(ref_dot), invalid.astype(state.violation.dtype)
    )


class _Saved(NamedTuple):
    eigenvalues: Any
    coefficients: Any
    reference_coefficients: Any
    generator: Any
    frames: Any
    residuals: Any
    reduced: Any
    reduced_reference: Any
    eigenvalue_rates: Any
    order: Any
    mismatch: Any
    mismatch_mode: Any


def _labels(overlap):
    """Tracked label of each sorted eigenvector (largest overlap); identity if not a permutation."""
    n = overlap.shape[0]
    perm = jnp.argmax(jnp.abs(overlap), axis=1)
    is_perm = jnp.all(jnp.zeros(n, jnp.int32).at[perm].add(1) == 1)
    return jnp.where(is_perm, perm, jnp.arange(n))


def _gauge_rotation(matched_overlap, inside):
    """Block rotation Q maximising tr(Qᵀ B), B the overlap restricted to clusters (Procrustes).

    Without clusters this is the sign of each diagonal overlap (O(n²)); with clusters, one SVD.
    """
    n = matched_overlap.shape[0]
    has_cluster = jnp.any(inside & ~jnp.eye(n, dtype=bool))

    def signs(_):
        s = jnp.where(jnp.diagonal(matched_overlap) < 0, -1.0, 1.0)
        return jnp.diag(s.astype(matched_overlap.dtype))

    def procrustes(_):
        u, _, vh = jnp.linalg.svd(jnp.where(inside, matched_overlap, 0.0))
        return _mm(u, vh)

    return jax.lax.cond(has_cluster, procrustes, signs, None)


def _save(t, state: KatoState, args):
    op, output_gap, reduce, e0_norm = args
    m, dm = op.value_and_derivative(t)
    lam, vec = eigh_descending(m)
    overlap = _mm(vec.T, state.frame)
    order = _labels(overlap)
    inside = same_cluster(lam, output_gap)
    q = _gauge_rotation(overlap[:, order], inside)
    frame = _mm(vec, q)  # output basis: eigenvectors, gauge of the tracked frame
    g_eigen = _mm(_mm(vec.T, dm), vec)
    generator = _mm(_mm(q.T, cluster_generator(g_eigen, lam, output_gap)), q)
    rates = jnp.einsum("ik,ij,jk->k", q, g_eigen, q, precision=_HIGHEST)
    residual = state.frame @ state.coefficients
    coefficients = frame.T @ residual
    if state.reference is None:
        reference_coefficients, mismatch, mode = None, jnp.zeros((), lam.dtype), jnp.zeros(())
    else:
        reference_coefficients = frame.T @ state.reference
        mismatch = jnp.linalg.norm(residual - state.reference) / e0_norm
        mode = jnp.argmax(jnp.abs(coefficients - reference_coefficients))
    if reduce is None:
        kept, reduced, reduced_ref = (generator, frame), None, None
    else:  # only the reduction leaves the solve: no (T, n, n) arrays are stored
        kept = (None, None)
        reduced = reduce(lam, coefficients, generator)
        reduced_ref = None
        if reference_coefficients is not None:
            reduced_ref = reduce(lam, reference_coefficients, generator)
    return _Saved(
        lam, coefficients, reference_coefficients, *kept, residual, reduced, reduced_ref, rates,
        order.astype(lam.dtype), mismatch, jnp.asarray(mode, lam.dtype),  # float: see _as_index
    )


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
        _mm(frame0.T, e0[:, None])[:, 0],
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
        save_fn=lambda t, y, _: _save(t, y, (op, output_gap, reduce, e0_norm)),
        event=event,
        progress_meter=progress_meter,
    )


class KatoSolution(eqx.Module):
    """Result of `solve_kato`, at the saved times, modes sorted by descending eigenvalue.

    - `ts` (T,), `eigenvalues` (T, n), `coefficients` (T, n) ($c = \\Phi^T e$ in the saved
      eigenbasis), `generator` (T, n, n) (Kato $W$; 0 inside clusters), `frames` (T, n, n)
      (the eigenvectors $\\Phi$, signs continuous along the run, parallel-transport gauge inside
      clusters; `frames @ coefficients` is $e$), `residuals` (T, n) ($e = \\Phi c$ from the Kato
      state), `eigenvalue_rates` (T, n) ($\\dot\\lambda$), `order` (T, n) (tracked label of
      each sorted mode: a change marks a crossing), `relative_gaps` (T, n-1) (adjacent gaps
      over $\\lambda_1$), `min_gap` / `min_gap_index` (T,).
    - Self-check: `reference_coefficients` (T, n) (the independent $e(t)$ in the same basis, or
      None when disabled), `self_check_mismatch` (T,) ($\\|\\Phi c - e\\|/\\|e_0\\|$),
      `self_check_mode` (T,) (the mode carrying most of it), `self_check_tolerance`.
    - `reduced` / `reduced_reference`: with `solve_kato(..., reduce=f)`, `f(eigenvalues,
      coefficients, generator)` at each saved time from the Kato coefficients and from the
      reference; `generator` and `frames` are then None.
    - `stats` (steps, right-hand-side evaluations), `result` (diffrax's code), `error` (None or
      the message of the failure), `succeeded`.
    """

    ts: Float[Array, " T"]
    eigenvalues: Float[Array, "T n"]
    coefficients: Float[Array, "T n"]
    generator: Float[Array, "T n n"] | None
    frames: Float[Array, "T n n"] | None
    residuals: Float[Array, "T n"]
    reference_coefficients: Float[Array, "T n"] | None
    reduced: Any
    reduced_reference: Any
    eigenvalue_rates: Float[Array, "T n"]
    order: Int[Array, "T n"]
    relative_gaps: Float[Array, "T _"]
    min_gap: Float[Array, " T"]
    min_gap_index: Int[Array, " T"]
    self_check_mismatch: Float[Array, " T"]
    self_check_mode: Int[Array, " T"]
    stats: dict
    result: diffrax.RESULTS
    error: str | None = eqx.field(static=True)
    self_check_tolerance: float = eqx.field(static=True)
    degeneracy_threshold: float = eqx.field(static=True)

    @property
    def energies(self) -> Float[Array, "T n"]:
        """Mode energies $\\varepsilon_k = c_k^2$."""
        return self.coefficients**2

    @property
    def loss(self) -> Float[Array, " T"]:
        """$L = \\sum_k \\varepsilon_k / (2n)$."""
        return jnp.sum(self.energies, axis=-1) / (2 * self.coefficients.shape[-1])

    @property
    def degenerate_pairs(self) -> list[tuple[float, int, int, float]]:
        """Near-degenerate adjacent pairs at the saved times: (t, k, k+1, relative gap)."""
        gaps, ts = np.asarray(self.relative_gaps), np.asarray(self.ts)
        hits = np.argwhere(gaps < self.degeneracy_threshold)
        return [(float(ts[i]), int(k), int(k) + 1, float(gaps[i, k])) for i, k in hits]

    @property
    def crossings(self) -> list[tuple[float, float, tuple[int, ...]]]:
        """Changes of the sorted order between saved times: (t_i, t_{i+1}, labels that moved)."""
        order, ts = np.asarray(self.order), np.asarray(self.ts)
        out = []
        for i in range(order.shape[0] - 1):
            moved = order[i] != order[i + 1]
            if np.any(moved):
                out.append((float(ts[i]), float(ts[i + 1]), tuple(int(x) for x in order[i][moved])))
        return out

    @property
    def succeeded(self) -> bool:
        return self.error is None and bool(self.result == diffrax.RESULTS.successful)


def _as_index(x):
    # Saved as floats because diffrax fills saves past an early stop with inf; those become -1.
    return jnp.where(jnp.isfinite(x), x, -1).astype(jnp.int32)


def _relative_gaps(lam):
    scale = jnp.maximum(jnp.abs(lam[:, :1]), jnp.finfo(lam.dtype).tiny)
    if lam.shape[1] > 1:
        return (lam[:, :-1] - lam[:, 1:]) / scale
    return jnp.full((lam.shape[0], 1), jnp.inf, lam.dtype)


def solve_kato(
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
    - `solver`: any diffrax solver (default `diffrax.Tsit5()`); `stepsize_controller`: any
      diffrax controller (overrides `rtol`/`atol`); `dt0`: first step (default: estimated).
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
    check_state(op, e0, ts)
    dtype = op.dtype
    e0 = jnp.asarray(e0, dtype)
    ts = jnp.asarray(ts, dtype)
    solver = diffrax.Tsit5() if solver is None else solver
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
    saved: _Saved = sol.ys[0]
    final_t, final_state = sol.ts[1][-1], jax.tree_util.tree_map(lambda x: x[-1], sol.ys[1])
    guess = uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0])
    stats = solver_stats(sol, solver, initial_step_guess=guess)

    error = None
    violation = float(final_state.violation)
    if violation > 0:
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
    if error is None and self_check.enabled and not np.all(mismatch[reached] <= check_tolerance):
        error = describe_mismatch(
            np.asarray(sol.ts[0])[reached], mismatch[reached],
            np.asarray(saved.mismatch_mode)[reached], check_tolerance,
        )
        if throw:
            raise SelfCheckError(error)

    relative_gaps = _relative_gaps(saved.eigenvalues)
    if np.finfo(dtype).bits < 64 and error is None:
        smallest = float(jnp.min(relative_gaps))
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
        order=_as_index(saved.order),
        relative_gaps=relative_gaps,
        min_gap=jnp.min(relative_gaps, axis=1),
        min_gap_index=jnp.argmin(relative_gaps, axis=1),
        self_check_mismatch=saved.mismatch,
        self_check_mode=_as_index(saved.mismatch_mode),
        stats=stats,
        result=sol.result,
        error=error,
        self_check_tolerance=check_tolerance,
        degeneracy_threshold=clusters.report_gap,
    )
