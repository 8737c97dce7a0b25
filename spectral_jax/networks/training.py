"""Training runs recorded for spectral analysis: gradient flow (diffrax) and optax optimisers.

Conventions (docs/theory.md §2.1): the trained function is $f_\\alpha = \\alpha (f_\\theta -
f_{\\theta_0})$ with loss $L = \\|f_\\alpha(X) - y\\|^2/(2n\\alpha^2)$, residual
$e = f_\\alpha(X) - y$, so that $\\dot e = -M e$ with $M = K_\\theta(X, X)/n$ for every α while
θ moves O(1/α). Time is learning rate × steps.

A `TrainingRecord` holds, at log-spaced times: θ, residuals, $M$, $\\dot M$ (exact, forward-mode
AD along $\\dot\\theta = -J^T e/(n\\alpha)$), the spectrum of $M$, test predictions and the
cross kernel $K(x^*, X)$. `record.operator()` is the `InterpolatedOperator` (cubic Hermite, using
the recorded $\\dot M$) that `solve_kato` and the shell budgets consume.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float

from ..networks.ntk import NTKImplementation, _scalar_outputs, empirical_ntk, ntk_flow_derivative
from ..operators.core import InterpolatedOperator

__all__ = [
    "TrainingRecord",
    "log_times",
    "log_steps",
    "record_trajectory",
    "gradient_flow",
    "train_optax",
]


class TrainingRecord(eqx.Module):
    """A training run at its saved times.

    - `ts` (T,): times (learning rate × steps for discrete optimisers).
    - `params`: the parameter pytree with a leading T axis.
    - `residuals` (T, n): $e = f_\\alpha(X) - y$ measured from the network.
    - `kernels` (T, n, n): $M = K(X, X)/n$ (already divided by n).
    - `kernel_derivatives` (T, n, n): $\\dot M$ along gradient flow at the saved θ (for
      GD/SGD/Adam this is the gradient-flow derivative at the visited θ, not the optimiser's).
    - `eigenvalues` (T, n): eigenvalues of $M$, descending.
    - `test_predictions` (T, m), `test_kernels` (T, m, n) = $K(x^*, X)$ (not divided by n),
      `y_test` (m,): None without test points.
    - `y_train` (n,), `alpha` (output scale), `method` (how the run was made).
    """

    ts: Float[Array, " T"]
    params: Any
    residuals: Float[Array, "T n"]
    kernels: Float[Array, "T n n"]
    kernel_derivatives: Float[Array, "T n n"]
    eigenvalues: Float[Array, "T n"]
    y_train: Float[Array, " n"]
    test_predictions: Float[Array, "T m"] | None
    test_kernels: Float[Array, "T m n"] | None
    y_test: Float[Array, " m"] | None
    alpha: float = eqx.field(static=True)
    method: str = eqx.field(static=True)

    @property
    def n(self) -> int:
        return self.residuals.shape[-1]

    @property
    def loss(self) -> Float[Array, " T"]:
        """$\\|e\\|^2/(2n)$ (the training loss times α², i.e. in function space)."""
        return jnp.sum(self.residuals**2, axis=-1) / (2 * self.n)

    @property
    def test_loss(self) -> Float[Array, " T"] | None:
        """$\\|f_\\alpha(x^*) - y^*\\|^2/(2m)$."""
        if self.test_predictions is None:
            return None
        err = self.test_predictions - self.y_test[None, :]
        return jnp.sum(err**2, axis=-1) / (2 * err.shape[-1])

    @property
    def initial_residual(self) -> Float[Array, " n"]:
        return self.residuals[0]

    @property
    def kernel_velocity(self) -> Float[Array, " T"]:
        """$\\|\\dot M\\|_F / \\|M\\|_F$ at each saved time."""
        num = jnp.sqrt(jnp.sum(self.kernel_derivatives**2, axis=(-2, -1)))
        return num / jnp.sqrt(jnp.sum(self.kernels**2, axis=(-2, -1)))

    def operator(self, *, use_derivatives: bool = True) -> InterpolatedOperator:
        """$M(t)$ between the saved times: cubic Hermite with the recorded $\\dot M$ (default),
        or the natural cubic spline through the kernels alone."""
        derivatives = self.kernel_derivatives if use_derivatives else None
        return InterpolatedOperator(self.ts, self.kernels, derivatives)


def log_times(t_max: float, num: int, *, t_min: float | None = None, include_zero: bool = True):
    """`num` log-spaced times in [t_min, t_max] (t_min default t_max·1e-3), preceded by 0."""
    if t_max <= 0 or num < 1:
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


def _check_data(x, y, x_test, y_test, params):
    x, y = jnp.asarray(x), jnp.asarray(y)
    if y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"training: need x (n, ...) and y (n,); got {x.shape}, {y.shape}")
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(params)}
    if len(dtypes) != 1:
        names = sorted(map(str, dtypes))
        raise TypeError(f"training: parameters must share one dtype, got {names}")
    (dtype,) = dtypes
    for name, arr in (("x", x), ("y", y)):
        if arr.dtype != dtype:
            raise TypeError(f"training: {name} is {arr.dtype} but the parameters are {dtype}")
    if (x_test is None) != (y_test is None):
        raise ValueError("training: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
        if y_test.ndim != 1 or x_test.shape[0] != y_test.shape[0]:
            raise ValueError(
                f"training: need x_test (m, ...) and y_test (m,); got {x_test.shape}, "
                f"{y_test.shape}"
            )
    return x, y, x_test, y_test


def _outputs(apply_fn, params, x):
    return _scalar_outputs(apply_fn(params, x), x.shape[0], "training")


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _record_path(apply_fn, params_path, data, implementation, chunk_size):
    # Module level and keyed on apply_fn: runs that differ only in α or data reuse one compile.
    x, y, f0, x_test, f0_test, alpha = data

    def one(params):
        e = alpha * (_outputs(apply_fn, params, x) - f0) - y
        m, dm = ntk_flow_derivative(
            apply_fn, params, x, e, alpha=alpha, implementation=implementation,
            chunk_size=chunk_size,
        )
        m = 0.5 * (m + m.T)  # the reference contraction is symmetric only to round-off
        dm = 0.5 * (dm + dm.T)
        lam = jnp.linalg.eigvalsh(m)[::-1]
        if x_test is None:
            return e, m, dm, lam, None, None
        pred = alpha * (_outputs(apply_fn, params, x_test) - f0_test)
        cross = empirical_ntk(
            apply_fn, params, x_test, x, implementation=implementation, chunk_size=chunk_size
        )
        return e, m, dm, lam, pred, cross

    return jax.lax.map(one, params_path)


def _flow_field(t, theta, args):
    apply_fn, x, y, f0, alpha = args
    n = x.shape[0]

    def loss(p):
        e = alpha * (_outputs(apply_fn, p, x) - f0) - y
        return jnp.sum(e**2) / (2 * n * alpha**2)

    return jax.tree.map(jnp.negative, jax.grad(loss)(theta))


_FLOW_TERM = diffrax.ODETerm(_flow_field)
_diffeqsolve = eqx.filter_jit(diffrax.diffeqsolve)


def record_trajectory(
    apply_fn: Callable,
    params0: Any,
    params_path: Any,
    ts,
    x,
    y,
    *,
    alpha: float = 1.0,
    x_test=None,
    y_test=None,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
    method: str = "custom",
) -> TrainingRecord:
    """Build a `TrainingRecord` from saved parameters (leading axis T) at times `ts`.

    `params0` is the initialisation θ₀ defining $f_\\alpha = \\alpha(f_\\theta - f_{\\theta_0})$.
    """
    x, y, x_test, y_test = _check_data(x, y, x_test, y_test, params0)
    dtype = y.dtype
    ts = jnp.asarray(ts, dtype)
    f0 = _outputs(apply_fn, params0, x)
    f0_test = None if x_test is None else _outputs(apply_fn, params0, x_test)
    e, m, dm, lam, pred, cross = _record_path(
        apply_fn,
        params_path,
        (x, y, f0, x_test, f0_test, jnp.asarray(alpha, dtype)),
        NTKImplementation(implementation),
        chunk_size,
    )
    return TrainingRecord(
        ts=ts,
        params=params_path,
        residuals=e,
        kernels=m,
        kernel_derivatives=dm,
        eigenvalues=lam,
        y_train=y,
        test_predictions=pred,
        test_kernels=cross,
        y_test=y_test,
        alpha=float(alpha),
        method=method,
    )


def gradient_flow(
    apply_fn: Callable,
    params: Any,
    x,
    y,
    ts,
    *,
    alpha: float = 1.0,
    x_test=None,
    y_test=None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 200_000,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
) -> TrainingRecord:
    """Exact gradient flow $\\dot\\theta = -\\nabla L$ integrated with diffrax (the reference).

    **Arguments:**
    - `apply_fn`, `params`: the network (e.g. from `from_nnx`); `params` is θ at `ts[0]` and
      also θ₀ of the centred output $f_\\alpha$.
    - `x` (n, ...), `y` (n,): training data, same dtype as the parameters (float64 for analysis).
    - `ts` (T,): strictly increasing save times (e.g. `log_times`); integration starts at ts[0].
    - `alpha`: output scale; `x_test`, `y_test`: optional test data.
    - `rtol`, `atol`, `solver` (default `diffrax.Dopri8()`), `max_steps`: integration options.
    - `implementation`, `chunk_size`: how the recorded kernels are computed.

    **Returns:** a `TrainingRecord` with `method="gradient_flow"`.
    """
    x, y, x_test, y_test = _check_data(x, y, x_test, y_test, params)
    ts = np.asarray(ts, dtype=np.float64)
    if ts.ndim != 1 or ts.shape[0] < 2 or np.any(np.diff(ts) <= 0):
        raise ValueError("gradient_flow: ts must be 1-D, strictly increasing, with >= 2 times")
    dtype = y.dtype
    f0 = _outputs(apply_fn, params, x)
    solver = diffrax.Dopri8() if solver is None else solver
    ts_j = jnp.asarray(ts, dtype)
    sol = _diffeqsolve(
        _FLOW_TERM,
        solver,
        t0=ts_j[0],
        t1=ts_j[-1],
        dt0=None,
        y0=params,
        args=(apply_fn, x, y, f0, jnp.asarray(alpha, dtype)),
        saveat=diffrax.SaveAt(ts=ts_j),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return record_trajectory(
        apply_fn,
        params,
        sol.ys,
        ts,
        x,
        y,
        alpha=alpha,
        x_test=x_test,
        y_test=y_test,
        implementation=implementation,
        chunk_size=chunk_size,
        method="gradient_flow",
    )


def train_optax(
    apply_fn: Callable,
    params: Any,
    x,
    y,
    optimizer: optax.GradientTransformation,
    *,
    learning_rate: float,
    num_steps: int,
    record_steps=None,
    num_records: int = 30,
    batch_size: int | None = None,
    key=None,
    alpha: float = 1.0,
    x_test=None,
    y_test=None,
    implementation: NTKImplementation = NTKImplementation.JACOBIAN_CONTRACTION,
    chunk_size: int | None = None,
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
    - others as in `gradient_flow`.

    **Returns:** a `TrainingRecord` with `method="optax"`.
    """
    x, y, x_test, y_test = _check_data(x, y, x_test, y_test, params)
    n = x.shape[0]
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(f"train_optax: batch_size must be in [1, {n}], got {batch_size}")
    if batch_size is not None and key is None:
        raise ValueError("train_optax: minibatch SGD (batch_size set) needs a `key`")
    steps = log_steps(num_steps, num_records) if record_steps is None else np.asarray(record_steps)
    if steps.ndim != 1 or np.any(np.diff(steps) <= 0) or steps[0] < 0:
        raise ValueError("train_optax: record_steps must be increasing non-negative integers")
    f0 = _outputs(apply_fn, params, x)
    key = jax.random.key(0) if key is None else key

    def loss(p, idx):
        e = alpha * (_outputs(apply_fn, p, x[idx]) - f0[idx]) - y[idx]
        return jnp.sum(e**2) / (2 * idx.shape[0] * alpha**2)

    def step(carry, _):
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
        return (optax.apply_updates(p, updates), state, k), None

    @jax.jit
    def advance(carry, count):
        return jax.lax.fori_loop(0, count, lambda i, c: step(c, None)[0], carry)

    carry = (params, optimizer.init(params), key)
    saved, done = [], 0
    for s in steps:
        carry = advance(carry, jnp.asarray(int(s) - done))
        done = int(s)
        saved.append(carry[0])
    path = jax.tree.map(lambda *leaves: jnp.stack(leaves), *saved)
    ts = learning_rate * steps.astype(np.float64)
    return record_trajectory(
        apply_fn,
        params,
        path,
        ts,
        x,
        y,
        alpha=alpha,
        x_test=x_test,
        y_test=y_test,
        implementation=implementation,
        chunk_size=chunk_size,
        method="optax",
    )
