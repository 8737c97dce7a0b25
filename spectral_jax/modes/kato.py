"""The exact Kato modewise system $\\dot c = (W - \\Lambda) c$, integrated with diffrax.

State of the integration: the modal coefficients $c$ and the tracked frame $\\Phi$ (whose
columns carry the mode labels and signs through the run). Each right-hand-side evaluation
does one `eigh` of $M(t)$, aligns it to the tracked frame (signs in O(n²)), forms
$G = \\Phi^T \\dot M \\Phi$ (two matmuls) and $\\dot\\Phi = -\\Phi W$ (one matmul).

Where eigenvalues cross (labels must be permuted) or come closer than `cluster_rtol`, the
right-hand side takes a second, O(n³) path: each cluster of close eigenvalues is transported
as one block (block Kato): the tracked frame is $\\Phi = VQ$ with $V$ the eigenvectors and $Q$
the rotation inside clusters closest to the tracked frame; the generator has the exact
inter-cluster entries $Q^T W_V Q$ and none inside a cluster (parallel transport of the
cluster's eigenspace), and $\\Lambda$ becomes the block $Q^T \\Lambda Q$. This is exact, and it
removes the stiffness of a nearly degenerate pair, whose $W_{kj} = G_{kj}/(\\lambda_k - \\lambda_j)$
would otherwise be huge. Saved outputs are always returned in the eigenbasis.

Reference: T. Kato, "On the adiabatic theorem of quantum mechanics", J. Phys. Soc. Jpn. 5
(1950) 435; the parallel-transport gauge $\\phi_k \\cdot \\dot\\phi_k = 0$.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._integrate import (
    default_controller,
    integrate,
    solver_stats,
    uses_initial_step_guess,
)
from .._checks import check_state
from ..operators.core import AbstractOperator
from ..modes.spectral_state import (
    SpectralState,
    cluster_alignment,
    default_cluster_rtol,
    default_degenerate_rtol,
    degenerate_mask,
    eigh_descending,
    kato_generator,
    spectral_state,
    track_frame,
)

__all__ = ["KatoState", "KatoSolution", "kato_vector_field", "solve_kato"]


class KatoState(NamedTuple):
    frame: Float[Array, "n n"]  # tracked Φ (columns in tracked order)
    coefficients: Float[Array, " n"]  # c = Φ^T e


def kato_vector_field(t, state: KatoState, args) -> KatoState:
    """$(\\dot\\Phi, \\dot c)$ at time t. `args = (op, cluster_rtol)`."""
    op, cluster_rtol = args
    m, dm = op.value_and_derivative(t)
    lam, vec = eigh_descending(m)
    c = state.coefficients
    diag_overlap = jnp.sum(state.frame * vec, axis=0)
    simple = jnp.all(jnp.abs(diag_overlap) > 0.5) & ~jnp.any(degenerate_mask(lam, cluster_rtol))

    def modewise(_):
        # Φ̇ = -Φ W on the fresh eigenbasis, so that the tracked frame does not drift.
        frame = vec * jnp.where(diag_overlap < 0, -1.0, 1.0).astype(vec.dtype)[None, :]
        w = kato_generator(frame.T @ dm @ frame, lam, cluster_rtol)
        return KatoState(-frame @ w, w @ c - lam * c)

    def blockwise(_):
        lam_p, vec_p, rotation = cluster_alignment(lam, vec, state.frame, cluster_rtol)
        w_eigen = kato_generator(vec_p.T @ dm @ vec_p, lam_p, cluster_rtol)  # 0 inside clusters
        w = rotation.T @ w_eigen @ rotation
        lam_block = rotation.T @ (lam_p[:, None] * rotation)
        return KatoState(-(vec_p @ rotation) @ w, w @ c - lam_block @ c)

    return jax.lax.cond(simple, modewise, blockwise, None)


class KatoSolution(eqx.Module):
    """Result of `solve_kato`, at the saved times, modes sorted by descending eigenvalue.

    - `ts` (T,), `eigenvalues` (T, n), `coefficients` (T, n) ($c = \\Phi^T e$, eigenvector
      signs continuous along the run; inside a near-degenerate cluster the eigenvectors take
      the sign that best follows the transported cluster basis), `generator` (T, n, n) (Kato
      $W$), `frames` (T, n, n) (the eigenvectors $\\Phi$; `frames @ coefficients` is $e$),
      `eigenvalue_rates` (T, n) ($\\dot\\lambda$), `order` (T, n) (tracked label of each sorted
      mode: a change marks a crossing), `relative_gaps` (T, n-1) (adjacent gaps
      $(\\lambda_k - \\lambda_{k+1})/\\lambda_1$ of the sorted spectrum), `min_gap` /
      `min_gap_index` (T,) (the smallest of them and its k), `stats` (steps and right-hand-side
      evaluations, see `_integrate.solver_stats`), `result` (diffrax's result code).

    `residuals` (T, n) is $e(t) = \\Phi(t)c(t)$ in the ambient basis. With `solve_kato(...,
    reduce=f)`, `reduced` holds `f(eigenvalues, coefficients, generator)` at each saved
    time (leading axis T) and the (T, n, n) `generator` and `frames` are not kept (None).

    Degeneracies are recorded at the saved times (`degenerate_pairs`); a crossing between two
    saved times shows up as a change of `order` (`crossings`).
    """

    ts: Float[Array, " T"]
    eigenvalues: Float[Array, "T n"]
    coefficients: Float[Array, "T n"]
    generator: Float[Array, "T n n"] | None
    frames: Float[Array, "T n n"] | None
    residuals: Float[Array, "T n"]
    reduced: Any
    eigenvalue_rates: Float[Array, "T n"]
    order: Int[Array, "T n"]
    relative_gaps: Float[Array, "T n-1"]
    min_gap: Float[Array, " T"]
    min_gap_index: Int[Array, " T"]
    stats: dict
    result: diffrax.RESULTS
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
        """Near-degenerate adjacent pairs met at the saved times: (t, k, k+1, relative gap).

        Every adjacent pair (in descending order) whose relative gap is below
        `degeneracy_threshold`, at every saved time, in time order.
        """
        gaps, ts = np.asarray(self.relative_gaps), np.asarray(self.ts)
        hits = np.argwhere(gaps < self.degeneracy_threshold)
        return [(float(ts[i]), int(k), int(k) + 1, float(gaps[i, k])) for i, k in hits]

    @property
    def crossings(self) -> list[tuple[float, float, tuple[int, ...]]]:
        """Changes of the sorted order between saved times: (t_i, t_{i+1}, labels that moved).

        Labels are tracked mode labels (columns of the frame at `ts[0]`); a true eigenvalue
        crossing between two saved times swaps the sorted positions of the labels involved.
        """
        order, ts = np.asarray(self.order), np.asarray(self.ts)
        out = []
        for i in range(order.shape[0] - 1):
            moved = order[i] != order[i + 1]
            if np.any(moved):
                out.append((float(ts[i]), float(ts[i + 1]), tuple(int(x) for x in order[i][moved])))
        return out

    @property
    def succeeded(self) -> bool:
        return bool(self.result == diffrax.RESULTS.successful)


def _sorted_output(t, state: KatoState, op, rtol, cluster_rtol, reduce):
    m, dm = op.value_and_derivative(t)
    lam_t, vec_t, rotation = track_frame(*eigh_descending(m), state.frame, cluster_rtol)
    # Back to the eigenbasis: e = V Q c_tracked, so c = Q c_tracked; W by the plain formula
    # (only numerically exact degeneracies masked).
    g = vec_t.T @ dm @ vec_t
    s = SpectralState(lam_t, vec_t, g, kato_generator(g, lam_t, rtol))
    coefficients = rotation @ state.coefficients
    order = jnp.argsort(-s.eigenvalues, stable=True)
    lam = s.eigenvalues[order]
    scale = jnp.maximum(jnp.abs(lam[0]), jnp.finfo(lam.dtype).tiny)
    gaps = (lam[:-1] - lam[1:]) / scale if lam.shape[0] > 1 else jnp.full((1,), jnp.inf, lam.dtype)
    coefficients = coefficients[order]
    generator, frame = s.generator[order][:, order], s.frame[:, order]
    if reduce is None:
        kept, reduced = (generator, frame), None
    else:  # only the reduction leaves the loop: no (T, n, n) arrays are stored
        kept, reduced = (None, None), reduce(lam, coefficients, generator)
    return (
        lam,
        coefficients,
        *kept,
        frame @ coefficients,
        reduced,
        s.eigenvalue_rates[order],
        order,
        gaps,
        jnp.min(gaps),
        jnp.argmin(gaps),
    )


@eqx.filter_jit
def _solve_kato(
    op, e0, ts, rtol_degenerate, cluster_rtol, reduce, solver, stepsize_controller, dt0,
    max_steps, throw,
):
    m0, dm0 = op.value_and_derivative(ts[0])
    s0 = spectral_state(m0, dm0, rtol=rtol_degenerate)
    state0 = KatoState(s0.frame, s0.frame.T @ e0)
    sol = integrate(
        kato_vector_field,
        state0,
        ts,
        (op, cluster_rtol),
        solver=solver,
        stepsize_controller=stepsize_controller,
        dt0=dt0,
        max_steps=max_steps,
        throw=throw,
    )
    # lax.map, not vmap: under vmap the `lax.cond` of `track_frame` becomes a select that runs
    # the SVD branch at every saved time.
    outputs = jax.lax.map(
        lambda x: _sorted_output(
            x[0], KatoState(x[1], x[2]), op, rtol_degenerate, cluster_rtol, reduce
        ),
        (sol.ts, sol.ys.frame, sol.ys.coefficients),
    )
    return sol, outputs


def _rms(x):
    return jnp.sqrt(jnp.mean(x**2))


def _coefficient_frame_norm(error: KatoState):
    # Error control: the coefficients must not be diluted by the n² frame entries in an RMS.
    return jnp.maximum(_rms(error.coefficients), _rms(error.frame))


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
    degenerate_rtol: float | None = None,
    cluster_rtol: float | None = None,
    degeneracy_threshold: float = 1e-6,
    reduce: Callable | None = None,
) -> KatoSolution:
    """Integrate the exact Kato modewise ODE $\\dot c = (W - \\Lambda)c$ (docs/theory.md §2.2).

    **Arguments:**
    - `op`: an operator (`CallableOperator`, `FrozenOperator`, ...) giving $M(t)$.
    - `e0`: (n,) initial residual in the ambient basis, same dtype as `op`.
    - `ts`: (T,) strictly increasing save times; integration runs from `ts[0]` to `ts[-1]`.
    - `rtol`, `atol`: tolerances of the default `diffrax.PIDController` (default by dtype:
      1e-8/1e-10 in float64, 1e-5/1e-7 in float32).
    - `solver`: any diffrax solver (default `diffrax.Tsit5()`).
    - `stepsize_controller`: any diffrax controller (overrides `rtol`/`atol`).
    - `degenerate_rtol`: relative gap below which two eigenvalues count as one (exactly
      degenerate): their entry of the saved `generator` is 0; default by dtype (1e-10 in f64).
    - `cluster_rtol`: relative gap below which eigenvalues are transported as one block during
      the integration (see the module docstring); exact for any value, it only trades
      stiffness against an SVD per step while clusters exist. Default by dtype (1e-7 in f64).
    - `degeneracy_threshold`: relative gap reported in `.degenerate_pairs`.
    - `throw`: False records a failed solve in `.result` instead of raising (for sweeps).
    - `reduce`: optional `f(eigenvalues, coefficients, generator) -> pytree`, applied
      at each saved time inside the compiled solve, e.g. `functools.partial(shell_budget,
      shells)`; the (T, n, n) generator and frames are then not stored (memory O(T·n) instead
      of O(T·n²)).

    **Returns:** a `KatoSolution`.

    **Raises:** `ValueError`/`TypeError` for bad input (shapes, dtypes, non-symmetric,
    non-finite or negative-definite $M$, non-increasing `ts`).
    """
    check_state(op, e0, ts)
    dtype = op.dtype
    e0 = jnp.asarray(e0, dtype)
    ts = jnp.asarray(ts, dtype)
    cluster_rtol = default_cluster_rtol(dtype) if cluster_rtol is None else float(cluster_rtol)
    rtol_degenerate = (
        default_degenerate_rtol(dtype) if degenerate_rtol is None else float(degenerate_rtol)
    )
    solver = diffrax.Tsit5() if solver is None else solver
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, _coefficient_frame_norm, dtype=dtype)
    sol, out = _solve_kato(
        op, e0, ts, rtol_degenerate, cluster_rtol, reduce, solver, stepsize_controller, dt0,
        max_steps, throw,
    )
    lam, coeffs, gen, frames, residuals, reduced, rates, order, gaps, min_gap, min_gap_index = out
    guess = uses_initial_step_guess(solver, stepsize_controller, dt0, ts.shape[0])
    stats = solver_stats(sol, solver, initial_step_guess=guess)
    return KatoSolution(
        ts=sol.ts,
        eigenvalues=lam,
        coefficients=coeffs,
        generator=gen,
        frames=frames,
        residuals=residuals,
        reduced=reduced,
        eigenvalue_rates=rates,
        order=order,
        relative_gaps=gaps,
        min_gap=min_gap,
        min_gap_index=min_gap_index,
        stats=stats,
        result=sol.result,
        degeneracy_threshold=degeneracy_threshold,
    )
