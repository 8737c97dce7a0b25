"""Profile least squares for power-law closures: (v0, D0) in closed form, (a, b) by L-BFGS.

docs/theory.md §2.5. For fixed exponents (a, b) the closure flux is linear in $(v_0, D_0)$:
$\\Pi = v_0\\,q_{a,b}(E, t) + D_0\\,p_{a,b}(E, t)$ (for the upwind scheme, within each sign
branch of $v_0$). So $(v_0, D_0)$ are profiled out by weighted linear least squares, and the
profile loss over (a, b), smooth and two-dimensional, is minimised by `optax.lbfgs` from a
start point. `fit_batch` runs many weightings (bootstrap replicates) in one `vmap`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .faces import face_density
from .options import ClosureKind

__all__ = ["fit_batch", "grid_losses"]

# Admissible (a, b): beyond these a fit is reported at its start point instead.
BOUNDS = (np.array([-3.0, -0.99]), np.array([5.0, 4.0]))


def _bases(a, b, ts, energy, lam_f, du, lam_ref, t_ref, scheme):
    """(q_plus, q_minus, p): drift bases for v0 >= 0 and v0 <= 0, and the diffusion basis."""
    shape = (lam_f / lam_ref)[None, :] ** a * ((ts / t_ref) ** b)[:, None]
    lower, upper = energy[:, :-1], energy[:, 1:]
    # v0 >= 0 means v <= 0: the drift comes from the upper shell (smaller λ).
    dens_plus = face_density(lower, upper, du, scheme, from_upper=True)
    dens_minus = face_density(lower, upper, du, scheme, from_upper=False)
    return -shape * dens_plus, -shape * dens_minus, -shape * (upper - lower) / du**2


def _profile(theta, data, weights, kind, scheme):
    """Best (v0, D0) for exponents theta = (a, b) and the normalised weighted loss."""
    ts, energy, flux, lam_f, du, lam_ref, t_ref = data
    q_plus, q_minus, p = _bases(theta[0], theta[1], ts, energy, lam_f, du, lam_ref, t_ref, scheme)
    norm = jnp.sum(weights * flux**2)

    def loss(v, d, q):
        return jnp.sum(weights * (v * q + d * p - flux) ** 2) / norm

    def dot(x, y):
        return jnp.sum(weights * x * y)

    tiny = jnp.asarray(1e-300, flux.dtype)
    candidates = []
    for q, sign in ((q_plus, 1.0), (q_minus, -1.0)):
        qq, qf = dot(q, q), dot(q, flux)
        if kind is ClosureKind.DRIFT:
            v = sign * jnp.maximum(sign * qf / jnp.maximum(qq, tiny), 0.0)
            candidates.append((v, jnp.zeros_like(v)))
        else:
            qp, pp, pf = dot(q, p), dot(p, p), dot(p, flux)
            det = qq * pp - qp**2
            det = jnp.where(jnp.abs(det) > 1e-14 * qq * pp, det, tiny)
            v = (pp * qf - qp * pf) / det
            d = (qq * pf - qp * qf) / det
            feasible = sign * v >= 0
            d_alone = pf / jnp.maximum(pp, tiny)
            candidates.append((jnp.where(feasible, v, 0.0), jnp.where(feasible, d, d_alone)))
    losses = jnp.stack([loss(v, d, q) for (v, d), q in zip(candidates, (q_plus, q_minus))])
    losses = jnp.where(jnp.isfinite(losses), losses, jnp.inf)
    best = jnp.argmin(losses)
    v = jnp.stack([c[0] for c in candidates])[best]
    d = jnp.stack([c[1] for c in candidates])[best]
    return losses[best], v, d


def _fit_exponents(theta0, data, weights, kind, scheme, iterations):
    """optax L-BFGS on the profile loss over (a, b), from theta0."""

    def fun(theta):
        return _profile(theta, data, weights, kind, scheme)[0]

    # Backtracking line search: compiles several times faster than the default zoom search.
    linesearch = optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)
    opt = optax.lbfgs(linesearch=linesearch)
    value_and_grad = optax.value_and_grad_from_state(fun)

    def step(carry, _):
        theta, state = carry
        value, grad = value_and_grad(theta, state=state)
        grad = jnp.where(jnp.isfinite(grad), grad, 0.0)
        updates, state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=fun)
        return (optax.apply_updates(theta, updates), state), value

    # optax's L-BFGS mixes int32/int64 counters internally: trace it under standard promotion
    # (a scoped setting; the caller's strict mode is untouched elsewhere).
    with jax.numpy_dtype_promotion("standard"):
        (theta, _), _ = jax.lax.scan(step, (theta0, opt.init(theta0)), None, length=iterations)
    # Never return worse than the start (a line search can fail on a flat or kinked loss), nor
    # exponents far outside any physical range (a flat loss lets L-BFGS wander).
    better = fun(theta) <= fun(theta0)
    inside = jnp.all((theta >= BOUNDS[0]) & (theta <= BOUNDS[1]))
    theta = jnp.where(better & inside & jnp.all(jnp.isfinite(theta)), theta, theta0)
    loss, v, d = _profile(theta, data, weights, kind, scheme)
    return jnp.concatenate([v[None], theta, d[None]]), loss


@partial(jax.jit, static_argnames=("kind", "scheme"))
def grid_losses(grid, data, weights, kind, scheme):
    """Profile loss at each (a, b) row of `grid` (G, 2)."""
    return jax.vmap(lambda th: _profile(th, data, weights, kind, scheme)[0])(grid)


@partial(jax.jit, static_argnames=("kind", "scheme", "iterations"))
def fit_batch(theta0, counts, data, weights, kind, scheme, iterations):
    """L-BFGS fits from `theta0`, one per row of time weights `counts` (B, T).

    **Returns:** parameters (B, 4) in the order (v0, a, b, D0) and losses (B,).
    """

    def one(time_weights):
        return _fit_exponents(theta0, data, weights * time_weights[:, None], kind, scheme,
                              iterations)

    return jax.vmap(one)(counts)
