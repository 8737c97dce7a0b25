"""Helpers shared by several test modules (test modules import this, never each other).

- `rel_err`: the relative error of a trajectory;
- `count_compilations`: XLA compilations inside a block, for the "no recompilation" tests;
- `rotating_case`: a Kato run of the rotating power law next to its closed form;
- small float64 training runs (`teacher_data`, `mlp_run`, `random_features_run`), cached per
  pytest session so that the compile-heavy gradient-flow runs happen once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import spectral_jax as sj
from spectral_jax.networks import (
    MLP,
    RandomFeatures,
    from_nnx,
    gradient_flow,
    log_times,
    power_law_teacher,
)


def rel_err(x, ref) -> float:
    """Largest over saved times of ‖x(t) − ref(t)‖ / ‖ref(t)‖."""
    x, ref = np.asarray(x), np.asarray(ref)
    return float(np.max(np.linalg.norm(x - ref, axis=-1) / np.linalg.norm(ref, axis=-1)))


# --------------------------------------------------------------------------------------------
# Compilations
# --------------------------------------------------------------------------------------------

# JAX records one duration event per XLA backend compilation (jax._src.dispatch); counting
# them sees every jitted function run inside the block, diffrax's and equinox's included.
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass
class Compilations:
    """What `count_compilations` saw: `count` compilations, of the functions in `names`."""

    count: int = 0
    names: list[str] = dataclasses.field(default_factory=list)


def dop853_residuals(op, e0, ts):
    """e(t) at `ts` from scipy's DOP853 on de/dt = −M(t)e at rtol 1e-13: an independent oracle."""
    import scipy.integrate

    sol = scipy.integrate.solve_ivp(
        lambda t, e: -np.asarray(op(jnp.asarray(t))) @ e,
        (ts[0], ts[-1]),
        e0,
        method="DOP853",
        t_eval=ts,
        rtol=1e-13,
        atol=1e-15,
    )
    assert sol.success
    return sol.y.T


@contextlib.contextmanager
def count_compilations():
    """Count the XLA compilations that happen inside the `with` block.

        f(x)                              # warm up: compiles
        with count_compilations() as c:
            f(x + 1.0)                    # new values, same shapes
        assert c.count == 0, c.names

    tests/test_helpers.py checks that the count is not vacuous (a new shape is counted).
    """
    seen = Compilations()

    def listener(event, duration, **kwargs):
        del duration
        if event == BACKEND_COMPILE_EVENT:
            seen.count += 1
            seen.names.append(str(kwargs.get("fun_name", "?")))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


# --------------------------------------------------------------------------------------------
# The rotating power law along a Kato run (shells, projector)
# --------------------------------------------------------------------------------------------


ROTATING_N = 10  # modes of the rotating case of tests/test_shells.py and tests/test_projector.py


def rotating_case(lam, seed=0, coupling=0.25, t_count=64):
    """`RotatingPowerLaw` with eigenvalues `lam` and a random antisymmetric generator, solved by
    `solve_kato` on `t_count` times in [0, 6], with the closed-form coefficients and rates."""
    n = len(lam)
    rng = np.random.default_rng(seed)
    a = coupling * rng.normal(size=(n, n))
    a = jnp.asarray(a - a.T)
    op = sj.RotatingPowerLaw(jnp.asarray(lam), a)
    c0 = jnp.asarray(rng.normal(size=n))
    ts = jnp.linspace(0.0, 6.0, t_count)
    sol = sj.solve_kato(op, c0, ts, rtol=1e-11, atol=1e-13)
    exact_c = jax.vmap(lambda t: op.exact_coefficients(t, c0))(ts)
    exact_dc = -(exact_c * op.eigenvalues[None, :] + exact_c @ a.T)
    return op, c0, ts, sol, exact_c, exact_dc


# --------------------------------------------------------------------------------------------
# Small float64 training runs (training, network analysis)
# --------------------------------------------------------------------------------------------

# Central-difference probes around T_CENTER (saved in the same run as the log-spaced times).
T_CENTER = 2.0
FD_STEPS = (0.4, 0.2, 0.1)


def save_times():
    """Log-spaced times to t = 50 plus the central-difference probes (shared by both runs, so
    that the Kato solves of both records compile once)."""
    probes = [T_CENTER] + [T_CENTER + s * h for h in FD_STEPS for s in (-1.0, 1.0)]
    return np.unique(np.concatenate([log_times(50.0, 40, t_min=0.01), probes]))


@functools.cache
def teacher_data():
    return power_law_teacher(jax.random.key(0), 12, 8, 4, dtype=jnp.float64)


@functools.cache
def mlp_run():
    """A width-16, depth-2 tanh MLP trained by gradient flow (float64) to t = 50."""
    data = teacher_data()
    model = MLP(4, 16, 2, rngs=nnx.Rngs(0), param_dtype=jnp.float64)
    apply_fn, params = from_nnx(model)
    record = gradient_flow(
        apply_fn, params, data.x_train, data.y_train, save_times(),
        x_test=data.x_test, y_test=data.y_test,
    )
    return apply_fn, params, record


@functools.cache
def random_features_run():
    """Random features (p = 24 > n = 12, so M is full rank), only the readout trained."""
    data = teacher_data()
    model = RandomFeatures(4, 24, rngs=nnx.Rngs(1), param_dtype=jnp.float64)
    apply_fn, params = from_nnx(model)
    record = gradient_flow(
        apply_fn, params, data.x_train, data.y_train, save_times(),
        x_test=data.x_test, y_test=data.y_test,
    )
    return model, apply_fn, params, record
