"""The right-hand side of the Kato system: state, generator and vector field (docs/theory.md §2.2).

See `spectral_jax.modes.kato` for the equations and why they are exact for any cluster threshold.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import operator_is_invalid
from .clusters import same_cluster
from .spectral_state import eigh_descending

_HIGHEST = jax.lax.Precision.HIGHEST


def matmul_highest(a, b):
    # Full precision even where float32 products default to reduced precision (accelerators).
    return jnp.matmul(a, b, precision=_HIGHEST)


class KatoState(NamedTuple):
    frame: Float[Array, "n n"]  # tracked Φ; e = Φ c
    coefficients: Float[Array, " n"]
    reference: Float[Array, " n"] | None  # independent e(t) (self-check), None when disabled
    violation: Float[Array, ""]  # time spent with an invalid operator (> 0 ends the solve)


def cluster_generator(
    projected_derivative: Float[ArrayLike, "n n"], eigenvalues: Float[ArrayLike, " n"], relative_gap
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
    overlap = matmul_highest(vec.T, state.frame)  # R = VᵀΦ
    w = cluster_generator(matmul_highest(matmul_highest(vec.T, dm), vec), lam, relative_gap)
    d = matmul_highest(overlap, state.coefficients)  # e in the eigenbasis
    c_dot = matmul_highest(overlap.T, matmul_highest(w, d) - lam * d)
    frame_dot = -matmul_highest(matmul_highest(vec, w), overlap)
    ref_dot = None if state.reference is None else -matmul_highest(m, state.reference)

    def void(x):  # an invalid operator moves nothing but the violation clock
        return None if x is None else jnp.where(invalid, jnp.zeros_like(x), x)

    return KatoState(
        void(frame_dot), void(c_dot), void(ref_dot), invalid.astype(state.violation.dtype)
    )


def kato_stiff_part(t, state: KatoState, args) -> KatoState:
    """The part of `kato_vector_field` an IMEX solver treats implicitly.

    $\\dot c \\supset -\\mathrm{diag}(\\Phi^T M \\Phi)\\,c$ (the dissipation of each tracked
    mode, diagonal) and the self-check's $\\dot e_\\text{ref} = -Me$ (dense); nothing for the
    frame. The rates are held fixed (`stop_gradient`) for the Jacobian only, so that the
    Jacobian is exactly diagonal in $c$ and has no block coupling $c$ to $\\Phi$; the values
    are exact, and with them the split $f = (f - f_\\text{stiff}) + f_\\text{stiff}$.
    """
    op, _ = args
    m = op(t)
    m = jnp.where(jnp.isfinite(m), m, 0.0)  # an invalid M is caught by the explicit part
    rates = jax.lax.stop_gradient(jnp.sum(state.frame * matmul_highest(m, state.frame), axis=0))
    reference = None if state.reference is None else -matmul_highest(m, state.reference)
    return KatoState(
        jnp.zeros_like(state.frame),
        -rates * state.coefficients,
        reference,
        jnp.zeros_like(state.violation),
    )
