"""Training a network and recording it: exact gradient flow (diffrax) and optax optimisers.

Both return a `TrainingRecord` (`record.py`) at log-spaced times; what is trained and how its
kernels are recorded is one `TrainingConfig` (docs/theory.md §2.1 for the conventions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import ArrayLike, Float

from .._checks import check_solver_options, check_times
from .._integrate import default_controller, integrate
from .record import (
    TrainingConfig,
    TrainingMethod,
    TrainingRecord,
    check_data,
    outputs,
    record_trajectory,
    resolve_config,
)

__all__ = ["log_times", "log_steps", "gradient_flow", "train_optax"]


def log_times(t_max: float, num: int, *, t_min: float | None = None, include_zero: bool = True):
    """`num` log-spaced times in [t_min, t_max] (t_min default t_max·1e-3), preceded by 0."""
    if not t_max > 0 or num < 1:
        raise ValueError(f"log_times: need t_max > 0 and num >= 1, got {t_max}, {num}")
    t_min = t_max * 1e-3 if t_min is None else t_min
    if not 0 < t_min < t_max:
        raise ValueError(f"log_times: need 0 < t_min < t_max, got {t_min}, {t_max}")
    ts = np.geomspace(t_min, t_max, num)
    return np.concatenate([[0.0], ts]) if include_zero else ts


def log_steps(num_steps: int, num: int) -> np.ndarray:
    """About `num` distinct log-spaced step counts in [0, num_steps], 0 and num_steps included."""
    if num_steps < 1 or num < 2:
        raise ValueError(f"log_steps: need num_steps >= 1 and num >= 2, got {num_steps}, {num}")
    steps = np.unique(np.round(np.geomspace(1, num_steps, num - 1)).astype(np.int64))
    return np.concatenate([[0], steps])


def _flow_field(t, theta, args):
    apply_fn, x, y, f0, scale = args
    n = x.shape[0]

    def loss(p):
        e = scale * (outputs(apply_fn, p, x) - f0) - y
        return jnp.sum(e**2) / (2 * n * scale**2)

    return jax.tree.map(jnp.negative, jax.grad(loss)(theta))


@eqx.filter_jit
def _integrate_flow(params, ts, args, solver, stepsize_controller, max_steps, progress_meter):
    # The package's one route into diffrax (first step estimated, same saving conventions).
    return integrate(
        _flow_field, params, ts, args, solver=solver, stepsize_controller=stepsize_controller,
        dt0=None, max_steps=max_steps, throw=True, progress_meter=progress_meter,
    )


def gradient_flow(
    apply_fn: Callable,
    params: Any,
    x: Float[ArrayLike, "n ..."],
    y: Float[ArrayLike, " n"],
    ts: Float[ArrayLike, " T"],
    *,
    config: TrainingConfig | None = None,
    x_test: Float[ArrayLike, "m ..."] | None = None,
    y_test: Float[ArrayLike, " m"] | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    solver: diffrax.AbstractSolver | None = None,
    stepsize_controller: diffrax.AbstractStepSizeController | None = None,
    max_steps: int = 200_000,
    progress_meter: diffrax.AbstractProgressMeter | None = None,
    alpha: float | None = None,
) -> TrainingRecord:
    """Exact gradient flow $\\dot\\theta = -\\nabla L$ integrated with diffrax (the reference).

    **Arguments:**
    - `apply_fn`, `params`: the network (e.g. from `from_nnx`); `params` is θ at `ts[0]` and
      also θ₀ of the centred output $f_\\alpha$.
    - `x` (n, ...), `y` (n,): training data, same dtype as the parameters (float64 for analysis).
    - `ts` (T,): strictly increasing save times (e.g. `log_times`); integration starts at ts[0].
    - `config`: a `TrainingConfig` (output scale α, how kernels are recorded); default
      `TrainingConfig()`.
    - `x_test`, `y_test`: optional test data.
    - `rtol`, `atol`: tolerances of the default `diffrax.PIDController`; `solver` (default
      `diffrax.Dopri8()`: explicit, because an implicit step needs the Jacobian of the flow,
      the P×P parameter Hessian; any diffrax solver is accepted, e.g. `diffrax.Kvaerno5()`
      for a small network over a long horizon), `stepsize_controller` (overrides
      `rtol`/`atol`), `max_steps`,
      `progress_meter` (any diffrax progress meter, e.g. `diffrax.TqdmProgressMeter()`).
    - `alpha`: deprecated spelling of `config=TrainingConfig(output_scale=alpha)`.

    **Returns:** a `TrainingRecord` with `method=TrainingMethod.GRADIENT_FLOW`.

    **Raises:** `ValueError` for bad data, times or solver options (see `TrainingConfig` too).
    """
    config = resolve_config(config, alpha, "gradient_flow")
    x, y, x_test, y_test = check_data(x, y, x_test, y_test, params, "gradient_flow")
    check_times(ts, "ts")
    if np.shape(ts)[0] < 2:
        raise ValueError(f"gradient_flow: ts needs at least 2 times, got {np.shape(ts)[0]}")
    check_solver_options(rtol=rtol, atol=atol, max_steps=max_steps)
    dtype = y.dtype
    if stepsize_controller is None:
        stepsize_controller = default_controller(rtol, atol, dtype=dtype)
    ts_j = jnp.asarray(ts, dtype)
    f0 = outputs(apply_fn, params, x)
    sol = _integrate_flow(
        params,
        ts_j,
        (apply_fn, x, y, f0, jnp.asarray(config.output_scale, dtype)),
        diffrax.Dopri8() if solver is None else solver,
        stepsize_controller,
        max_steps,
        progress_meter,
    )
    return record_trajectory(
        apply_fn, params, sol.ys, ts_j, x, y, config=config, x_test=x_test, y_test=y_test,
        method=TrainingMethod.GRADIENT_FLOW,
    )


def train_optax(
    apply_fn: Callable,
    params: Any,
    x: Float[ArrayLike, "n ..."],
    y: Float[ArrayLike, " n"],
    optimizer: optax.GradientTransformation,
    *,
    learning_rate: float,
    num_steps: int,
    record_steps=None,
    num_records: int = 30,
    batch_size: int | None = None,
    key=None,
    config: TrainingConfig | None = None,
    x_test: Float[ArrayLike, "m ..."] | None = None,
    y_test: Float[ArrayLike, " m"] | None = None,
    alpha: float | None = None,
) -> TrainingRecord:
    """Discrete training with an optax optimiser (GD, SGD with minibatches, Adam, ...).

    Time is `learning_rate × steps` (pass the optimiser's step size as `learning_rate`; it is
    only used for the time axis). Full-batch `optax.sgd(η)` is gradient descent, which follows
    the gradient flow up to O(η) per step.

    **Arguments:**
    - `optimizer`: e.g. `optax.sgd(lr)` or `optax.adam(lr)`.
    - `num_steps`; `record_steps` (increasing step counts, default `log_steps(num_steps,
      num_records)`).
    - `batch_size`: minibatch size for SGD (sampled without replacement each step, needs
      `key`); None is full batch. The minibatch loss is $\\|e_B\\|^2/(2|B|\\alpha^2)$.
    - `config`, `x_test`, `y_test`, `alpha` (deprecated) as in `gradient_flow`.

    **Returns:** a `TrainingRecord` with `method=TrainingMethod.OPTAX`.
    """
    config = resolve_config(config, alpha, "train_optax")
    x, y, x_test, y_test = check_data(x, y, x_test, y_test, params, "train_optax")
    n = x.shape[0]
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(f"train_optax: batch_size must be in [1, {n}], got {batch_size}")
    if batch_size is not None and key is None:
        raise ValueError("train_optax: minibatch SGD (batch_size set) needs a `key`")
    steps = log_steps(num_steps, num_records) if record_steps is None else np.asarray(record_steps)
    if steps.ndim != 1 or np.any(np.diff(steps) <= 0) or steps[0] < 0:
        raise ValueError(
            f"train_optax: record_steps must be increasing non-negative integers, got {steps}"
        )
    f0 = outputs(apply_fn, params, x)
    key = jax.random.key(0) if key is None else key
    scale = config.output_scale

    def loss(p, idx):
        e = scale * (outputs(apply_fn, p, x[idx]) - f0[idx]) - y[idx]
        return jnp.sum(e**2) / (2 * idx.shape[0] * scale**2)

    def step(carry):
        p, state, k = carry
        k, sub = jax.random.split(k)
        if batch_size is None:
            idx = jnp.arange(n)
        else:
            idx = jax.random.choice(sub, n, (batch_size,), replace=False)
        grads = jax.grad(loss)(p, idx)
        # optax mixes its int32 step count with Python floats (Adam's bias correction), which
        # strict dtype promotion rejects; the update itself is dtype-preserving.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, k

    @jax.jit
    def advance(carry, count):
        return jax.lax.fori_loop(0, count, lambda i, c: step(c), carry)

    carry = (params, optimizer.init(params), key)
    saved, done = [], 0
    for s in steps:
        carry = advance(carry, jnp.asarray(int(s) - done))
        done = int(s)
        saved.append(carry[0])
    path = jax.tree.map(lambda *leaves: jnp.stack(leaves), *saved)
    ts = learning_rate * steps.astype(np.float64)
    return record_trajectory(
        apply_fn, params, path, ts, x, y, config=config, x_test=x_test, y_test=y_test,
        method=TrainingMethod.OPTAX,
    )
