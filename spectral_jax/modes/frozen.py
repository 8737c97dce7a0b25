"""The frozen fast path: the Kato solution of a constant operator in closed form.

**Why.** For a constant $M = V\\Lambda V^T$ (`FrozenOperator`, the lazy / NTK limit) the Kato
generator is $W = 0$, the eigenbasis never moves and each mode decays on its own:

    c(t) = exp(-Λ (t - t₀)) c₀,    c₀ = Vᵀ e₀,    e(t) = V c(t).

`solve_kato` reaches the same numbers by time stepping, one `eigh` per right-hand side and a
step count that grows with $\\lambda_{\\max}(t_{\\rm end} - t_0)$ (stiffness). Here one `eigh` in
total gives the exact solution at any time, $t = 10^6$ as cheaply as $t = 1$.

**Outputs** follow `solve_kato` field for field (`KatoSolution`): eigenvalues descending
(`eigh_descending`), the eigenvectors with the gauge of `fix_gauge` (the frame `solve_kato`
starts from and, for a constant operator, keeps; inside clusters any orthonormal eigenbasis is
exact), generator and eigenvalue rates zero, `order` the identity at every time, `residuals`
$e(t) = Vc(t)$, `reduce` applied at each saved time, after which `generator`/`frames` are None.
Eigenvalues below zero are round-off of a positive semi-definite $M$ (checked on input): the
exponent uses $\\max(\\lambda, 0)$ so that such a mode stays put instead of growing at large $t$.

**Self-check.** There is no second integration to compare with (`reference_coefficients` and
`reduced_reference` are None). What can go wrong is the decomposition itself, so the check is
its residual $\\|M_s V - V\\Lambda\\|_F / \\|M_s\\|_F$ ($M_s$ the symmetric part, which `eigh`
decomposes), the same at every saved time, with the worst column as `self_check_mode`. A
backward-stable `eigh` keeps it at a few $n\\,\\varepsilon$; the tolerance is
$1000\\, n\\, \\varepsilon$ of the dtype (`frozen_tolerance`), so only a failed or garbled
decomposition (NaN, non-convergence, a broken accelerator kernel) raises `SelfCheckError`.
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

from .._checks import check_operator_type, check_state
from ..operators.base import FrozenOperator
from .clusters import Clusters
from .kato_field import matmul_highest
from .kato_solution import KatoSolution, as_index, relative_gaps
from .self_check import PrecisionWarning, SelfCheckError
from .spectral_state import eigh_descending, fix_gauge

__all__ = ["frozen_tolerance", "solve_frozen"]


def frozen_tolerance(n: int, dtype) -> float:
    """Largest accepted relative eigendecomposition residual: 1000 · n · eps(dtype)."""
    return float(1000.0 * max(n, 1) * np.finfo(dtype).eps)


@eqx.filter_jit
def _solve_frozen(matrix, e0, ts, reduce):
    n, num_times = matrix.shape[0], ts.shape[0]
    lam, vec = eigh_descending(matrix)  # the only eigh of the solve
    frame = fix_gauge(vec)
    c0 = matmul_highest(frame.T, e0[:, None])[:, 0]
    decay = jnp.exp(-jnp.maximum(lam, 0.0)[None, :] * (ts - ts[0])[:, None])
    coefficients = decay * c0[None, :]
    residuals = matmul_highest(coefficients, frame.T)  # row i: e(t_i) = V c(t_i)
    # Self-check: the residual of the decomposition of what eigh decomposed (the symmetric part).
    sym = 0.5 * (matrix + matrix.T)
    columns = jnp.linalg.norm(matmul_highest(sym, frame) - frame * lam[None, :], axis=0)
    scale = jnp.maximum(jnp.linalg.norm(sym), jnp.finfo(matrix.dtype).tiny)
    mismatch = jnp.linalg.norm(columns) / scale
    eigenvalues = jnp.broadcast_to(lam, (num_times, n))
    zero_generator = jnp.zeros((n, n), matrix.dtype)
    if reduce is None:
        generator = jnp.zeros((num_times, n, n), matrix.dtype)
        frames = jnp.broadcast_to(frame, (num_times, n, n))
        reduced = None
    else:  # per saved time, as in solve_kato; no (T, n, n) array is formed
        generator = frames = None
        reduced = jax.vmap(reduce, in_axes=(None, 0, None))(lam, coefficients, zero_generator)
    gaps = relative_gaps(eigenvalues)
    return dict(
        eigenvalues=eigenvalues,
        coefficients=coefficients,
        generator=generator,
        frames=frames,
        residuals=residuals,
        reduced=reduced,
        eigenvalue_rates=jnp.zeros((num_times, n), matrix.dtype),
        order=jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32), (num_times, n)),
        relative_gaps=gaps,
        min_gap=jnp.min(gaps, axis=1),
        min_gap_index=jnp.argmin(gaps, axis=1),
        self_check_mismatch=jnp.broadcast_to(mismatch, (num_times,)),
        self_check_mode=as_index(jnp.broadcast_to(jnp.argmax(columns), (num_times,))),
    )


def solve_frozen(
    op: FrozenOperator,
    e0: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " T"],
    *,
    clusters: Clusters | None = None,
    reduce: Callable | None = None,
) -> KatoSolution:
    """The Kato solution of $\\dot e = -Me$ for a constant $M$, in closed form (one `eigh`).

    **Arguments:**
    - `op`: a `FrozenOperator`.
    - `e0`: (n,) initial residual in the ambient basis, same dtype as `op`.
    - `ts`: (T,) strictly increasing save times; `ts[0]` is $t_0$ (coefficients there are
      $V^T e_0$).
    - `clusters`: `Clusters`; only `report_gap` matters here (`KatoSolution.degenerate_pairs`
      and, in float32, the `PrecisionWarning` of `solve_kato`): with $W = 0$ no cluster is
      transported, and any orthonormal eigenbasis of a degenerate eigenvalue is exact.
    - `reduce`: optional `f(eigenvalues, coefficients, generator) -> pytree` at each saved
      time (generator 0); `generator` and `frames` are then None.

    **Returns:** a `KatoSolution` with the fields and conventions of `solve_kato`'s;
    `stats` reports no steps and one `eigh`.

    **Raises:** `ValueError`/`TypeError` for bad input (the checks of `solve_kato`),
    `SelfCheckError` when the eigendecomposition residual exceeds `frozen_tolerance`.
    """
    check_operator_type(op)
    if not isinstance(op, FrozenOperator):
        raise TypeError(
            f"solve_frozen needs a sj.FrozenOperator (a constant M), got {type(op).__name__}; "
            "use solve_kato for a time-dependent operator"
        )
    clusters = Clusters() if clusters is None else clusters
    if not isinstance(clusters, Clusters):
        raise TypeError(f"clusters must be a sj.Clusters, got {type(clusters).__name__}")
    if reduce is not None and not callable(reduce):
        raise TypeError(f"reduce must be a callable or None, got {type(reduce).__name__}")
    check_state(op, e0, ts)
    dtype = op.dtype
    e0 = jnp.asarray(e0, dtype)
    ts = jnp.asarray(ts, dtype)
    out = _solve_frozen(jnp.asarray(op.matrix, dtype), e0, ts, reduce)

    n = e0.shape[0]
    tolerance = frozen_tolerance(n, dtype)
    residual = float(out["self_check_mismatch"][0])
    if not residual <= tolerance:
        raise SelfCheckError(
            "the eigendecomposition of the frozen operator is inaccurate: "
            f"||M V - V Lambda||_F / ||M||_F = {residual:.3g} > tolerance {tolerance:.3g} "
            f"(1000 n eps), worst in mode {int(out['self_check_mode'][0])} in descending order"
        )
    if np.finfo(dtype).bits < 64:
        smallest = float(jnp.min(out["relative_gaps"]))
        if smallest < clusters.resolve(dtype):
            warnings.warn(
                f"solve_frozen runs in {np.dtype(dtype).name} and meets relative eigenvalue gaps "
                f"of {smallest:.1e}, below what it resolves: modes closer than that are only "
                "known as clusters. Enable float64 (jax.config.update('jax_enable_x64', True)) "
                "for individual modes.",
                PrecisionWarning,
                stacklevel=2,
            )
    stats = {
        "num_steps": 0,
        "num_accepted_steps": 0,
        "num_rejected_steps": 0,
        "rhs_evaluations": 0,
        "eigh_calls": 1,
    }
    return KatoSolution(
        ts=ts,
        reference_coefficients=None,
        reduced_reference=None,
        stats=stats,
        result=diffrax.RESULTS.successful,
        error=None,
        self_check_tolerance=tolerance,
        degeneracy_threshold=clusters.report_gap,
        **out,
    )
