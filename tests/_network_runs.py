"""Small float64 training runs shared by test_training.py and test_network_analysis.py.

Cached per pytest session so that the (compile-heavy) gradient-flow runs happen once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from spectral_jax.networks import (
    MLP,
    RandomFeatures,
    from_nnx,
    gradient_flow,
    log_times,
    power_law_teacher,
)

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
