"""Training runs recorded for spectral analysis: the record, its options, and how it is made.

Conventions (docs/theory.md §2.1): the trained function is $f_\\alpha = \\alpha (f_\\theta -
f_{\\theta_0})$, α the output scale, with loss $L = \\|f_\\alpha(X) - y\\|^2/(2n\\alpha^2)$ and
residual $e = f_\\alpha(X) - y$, so that $\\dot e = -M e$ with $M = K_\\theta(X, X)/n$ for every
α while θ moves O(1/α). Time is learning rate × steps.

A `TrainingRecord` holds, at the saved times: θ, residuals, $M$, $\\dot M$ (exact, forward-mode
AD along $\\dot\\theta = -J^T e/(n\\alpha)$), the spectrum of $M$, test predictions and the
cross kernel $K(x^*, X)$. `record.operator()` is the `InterpolatedOperator` (cubic Hermite, using
the recorded $\\dot M$) that `solve_kato` and the shell budgets consume. The runs themselves are
made in `training.py` (gradient flow, optax optimisers).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..operators import InterpolatedOperator
from ._apply import all_finite, scalar_outputs
from .flow import ntk_flow_derivative
from .ntk import NTKImplementation, empirical_ntk

__all__ = ["TrainingMethod", "TrainingConfig", "TrainingRecord", "record_trajectory"]


class TrainingMethod(enum.Enum):
    """How a `TrainingRecord` was made."""

    GRADIENT_FLOW = "gradient_flow"  # diffrax integration of dθ/dt = -∇L (the reference)
    OPTAX = "optax"  # discrete steps of an optax optimiser
    CUSTOM = "custom"  # parameters saved by the caller, passed to `record_trajectory`


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What is trained and how its kernels are recorded; shared by `gradient_flow`,
    `train_optax` and `record_trajectory`.

    - `output_scale`: the Chizat–Bach α of $f_\\alpha = \\alpha(f_\\theta - f_{\\theta_0})$
      (docs/theory.md §2.1): large α is lazy, small α learns features. Finite and > 0.
    - `implementation`, `chunk_size`: how the recorded kernels are computed (`empirical_ntk`).

    **Raises:** `ValueError` for a non-positive or non-finite `output_scale`, an unknown
    `implementation` or a `chunk_size` that is not a positive int.
    """

    # Annotated with what __init__ accepts; __post_init__ normalises (float, enum, int).
    output_scale: float = 1.0
    implementation: NTKImplementation | int = NTKImplementation.AUTO
    chunk_size: int | np.integer | None = None

    def __post_init__(self):
        try:
            scale = float(self.output_scale)
        except (TypeError, ValueError):
            scale = math.nan
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(
                f"TrainingConfig: output_scale must be finite and > 0, got {self.output_scale!r}"
            )
        try:
            implementation = NTKImplementation(self.implementation)
        except ValueError:
            raise ValueError(
                f"TrainingConfig: implementation must be an NTKImplementation, got "
                f"{self.implementation!r}"
            ) from None
        chunk = self.chunk_size
        if chunk is not None and (
            isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1
        ):
            raise ValueError(f"TrainingConfig: chunk_size must be a positive int, got {chunk!r}")
        object.__setattr__(self, "output_scale", scale)
        object.__setattr__(self, "implementation", implementation)
        object.__setattr__(self, "chunk_size", None if chunk is None else int(chunk))


def resolve_config(config: TrainingConfig | None, alpha, where: str) -> TrainingConfig:
    """`config`, or one built from the deprecated `alpha=` keyword (with a warning)."""
    if alpha is None:
        return TrainingConfig() if config is None else config
    if config is not None:
        raise TypeError(f"{where}: give config=TrainingConfig(...) or alpha=, not both")
    warnings.warn(
        f"{where}: alpha= is deprecated, use config=TrainingConfig(output_scale=...)",
        DeprecationWarning,
        stacklevel=3,
    )
    return TrainingConfig(output_scale=alpha)


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
    - `y_train` (n,), `output_scale` (α), `method` (a `TrainingMethod`).
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
    output_scale: float = eqx.field(static=True)
    method: TrainingMethod = eqx.field(static=True)

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


def check_data(x, y, x_test, y_test, params, where: str):
    """Shapes, one dtype for data and parameters, finite values; returns them as arrays."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"{where}: need x (n, ...) and y (n,); got {x.shape}, {y.shape}")
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(params)}
    if len(dtypes) != 1:
        raise TypeError(f"{where}: parameters must share one dtype, got {sorted(map(str, dtypes))}")
    (dtype,) = dtypes
    for name, arr in (("x", x), ("y", y)):
        if arr.dtype != dtype:
            raise TypeError(f"{where}: {name} is {arr.dtype} but the parameters are {dtype}")
    if (x_test is None) != (y_test is None):
        raise ValueError(f"{where}: give both x_test and y_test, or neither")
    if x_test is not None:
        x_test, y_test = jnp.asarray(x_test, dtype), jnp.asarray(y_test, dtype)
        if y_test.ndim != 1 or x_test.shape[0] != y_test.shape[0]:
            raise ValueError(
                f"{where}: need x_test (m, ...) and y_test (m,); got {x_test.shape}, "
                f"{y_test.shape}"
            )
        if x_test.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"{where}: x_test has feature shape {x_test.shape[1:]} but x has {x.shape[1:]}"
            )
    arrays = {"x": x, "y": y, "x_test": x_test, "y_test": y_test, "params": params}
    for name, arr in arrays.items():
        if arr is not None and all_finite(arr) is False:
            raise ValueError(f"{where}: {name} contains NaN or Inf")
    return x, y, x_test, y_test


def outputs(apply_fn, params, x):
    return scalar_outputs(apply_fn(params, x), x.shape[0], "training")


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _record_path(apply_fn, params_path, data, implementation, chunk_size):
    # Module level and keyed on apply_fn: runs that differ only in α or data reuse one compile.
    x, y, f0, x_test, f0_test, scale = data
    kw = dict(implementation=implementation, chunk_size=chunk_size)

    def one(params):
        e = scale * (outputs(apply_fn, params, x) - f0) - y
        m, dm = ntk_flow_derivative(apply_fn, params, x, e, output_scale=scale, **kw)
        m = 0.5 * (m + m.T)  # the reference contraction is symmetric only to round-off
        dm = 0.5 * (dm + dm.T)
        lam = jnp.linalg.eigvalsh(m)[::-1]
        if x_test is None:
            return e, m, dm, lam, None, None
        pred = scale * (outputs(apply_fn, params, x_test) - f0_test)
        cross = empirical_ntk(apply_fn, params, x_test, x, **kw)
        return e, m, dm, lam, pred, cross

    return jax.lax.map(one, params_path)


def record_trajectory(
    apply_fn: Callable,
    params0: Any,
    params_path: Any,
    ts: Float[ArrayLike, " T"],
    x: Float[ArrayLike, "n ..."],
    y: Float[ArrayLike, " n"],
    *,
    config: TrainingConfig | None = None,
    x_test: Float[ArrayLike, "m ..."] | None = None,
    y_test: Float[ArrayLike, " m"] | None = None,
    method: TrainingMethod = TrainingMethod.CUSTOM,
) -> TrainingRecord:
    """Build a `TrainingRecord` from saved parameters (leading axis T) at times `ts`.

    `params0` is the initialisation θ₀ defining $f_\\alpha = \\alpha(f_\\theta - f_{\\theta_0})$;
    `config` (default `TrainingConfig()`) gives α and how the kernels are computed.
    """
    config = TrainingConfig() if config is None else config
    x, y, x_test, y_test = check_data(x, y, x_test, y_test, params0, "record_trajectory")
    dtype = y.dtype
    f0 = outputs(apply_fn, params0, x)
    f0_test = None if x_test is None else outputs(apply_fn, params0, x_test)
    # α as an array: sweeping it reuses the compiled recording.
    data = (x, y, f0, x_test, f0_test, jnp.asarray(config.output_scale, dtype))
    e, m, dm, lam, pred, cross = _record_path(
        apply_fn, params_path, data, config.implementation, config.chunk_size
    )
    return TrainingRecord(
        ts=jnp.asarray(ts, dtype),
        params=params_path,
        residuals=e,
        kernels=m,
        kernel_derivatives=dm,
        eigenvalues=lam,
        y_train=y,
        test_predictions=pred,
        test_kernels=cross,
        y_test=y_test,
        output_scale=config.output_scale,
        method=TrainingMethod(method),
    )
