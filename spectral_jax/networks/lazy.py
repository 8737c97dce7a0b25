"""Frozen-kernel (lazy) predictions, mode by mode and shell by shell (docs/theory.md §2.7).

With $M$ frozen at $t_0$, $e(t) = e^{-Mt} e(0)$ and the test prediction is

$$f_t(x^*) = f_0(x^*) - K(x^*, X)\\,\\Phi\\,\\mathrm{diag}\\big(g_k(t)/n\\big)\\,\\Phi^T e(0),
\\qquad g_k(t) = \\int_0^t e^{-\\lambda_k s}\\,ds = \\frac{1 - e^{-\\lambda_k t}}{\\lambda_k},$$

a sum over modes; `frozen_kernel_gain` is $g_k(t)$.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ..shells.grid import LogShells
from .record import TrainingRecord

__all__ = ["frozen_kernel_gain", "lazy_test_predictions", "lazy_test_error_by_shell"]


def frozen_kernel_gain(
    eigenvalues: Float[ArrayLike, " n"],
    times: Float[ArrayLike, "*T"],
    *,
    zero_tolerance: float = 0.0,
) -> Float[Array, "*T n"]:
    """$g_k(t) = (1 - e^{-\\lambda_k t})/\\lambda_k$: what mode k of a frozen kernel has
    integrated by time t (docs/theory.md §2.7), for every time and mode.

    **Arguments:**
    - `eigenvalues` (n,): eigenvalues $\\lambda_k$ of the frozen operator (any order).
    - `times`: a scalar or (T,) times since the kernel froze; `jnp.inf` gives the converged
      gain $1/\\lambda_k$ (kernel regression without ridge).
    - `zero_tolerance`: modes with $\\lambda_k \\le$ `zero_tolerance` $\\cdot \\max_k
      \\lambda_k$ (non-positive round-off included) are zero modes.

    **Returns:** (*T, n). Zero modes get the exact limit $g = t$ at finite t, and 0 at
    $t = \\infty$ (the pseudo-inverse): a zero mode of $M = JJ^T/n$ satisfies $J^T\\phi_k = 0$,
    so its test contribution $K(x^*, X)\\phi_k = J^* J^T \\phi_k$ vanishes whatever $g$ is; a
    finite $g$ keeps that product 0 instead of NaN.
    """
    lam = jnp.asarray(eigenvalues)
    if lam.ndim != 1:
        raise ValueError(f"frozen_kernel_gain: eigenvalues must be (n,), got shape {lam.shape}")
    t = jnp.asarray(times, lam.dtype)
    shape = (*t.shape, lam.shape[0])
    t, lam = jnp.broadcast_to(t[..., None], shape), jnp.broadcast_to(lam, shape)
    cutoff = jnp.maximum(zero_tolerance * jnp.max(lam), jnp.finfo(lam.dtype).tiny)
    live = lam > cutoff
    safe = jnp.where(live, lam, 1.0)
    # -expm1 keeps (1 - e^{-λt}) accurate when λt is small.
    gain = -jnp.expm1(-safe * t) / safe
    zero_mode = jnp.where(jnp.isinf(t), 0.0, t)
    return jnp.where(live, gain, zero_mode)


def lazy_test_predictions(record: TrainingRecord):
    """Frozen-kernel test predictions split by mode, kernel frozen at $t_0$ (module docstring).

    **Returns:** `(f0 (m,), contributions (T, m, n), eigenvalues (n,))`: column k of
    `contributions[i]` is mode k's term at time `ts[i]`; modes in descending order.

    **Raises:** `ValueError` if the record has no test data.
    """
    if record.test_kernels is None:
        raise ValueError("lazy_test_predictions: the record has no test data (x_test, y_test)")
    lam, phi = jnp.linalg.eigh(record.kernels[0])
    lam, phi = lam[::-1], phi[:, ::-1]
    c0 = phi.T @ record.residuals[0]
    gain = frozen_kernel_gain(lam, record.ts - record.ts[0])  # (T, n)
    projected = record.test_kernels[0] @ phi / record.n  # (m, n)
    contributions = -projected[None, :, :] * (gain * c0[None, :])[:, None, :]
    return record.test_predictions[0], contributions, lam


def lazy_test_error_by_shell(record: TrainingRecord, shells: LogShells):
    """Test loss of the frozen-kernel prediction with only shells 0..s learned.

    Shell membership from the eigenvalues at $t_0$.

    **Returns:** `(by_shell (T, S+2), gain (T, S+2))`: `by_shell[:, s]` is the test loss
    $\\|f - y^*\\|^2/(2m)$ with shells 0..s learned (the last column is the full lazy
    prediction); `gain[:, s]` is the decrease that shell s contributes (the first column
    relative to the untrained $f_0$), so `gain.sum(-1)` is the total improvement.
    """
    f0, contributions, lam0 = lazy_test_predictions(record)
    per_shell = jnp.einsum("tmk,ks->tms", contributions, shells.membership(lam0))
    cumulative = f0[None, :, None] + jnp.cumsum(per_shell, axis=-1)
    m = record.y_test.shape[0]
    by_shell = jnp.sum((cumulative - record.y_test[None, :, None]) ** 2, axis=1) / (2 * m)
    untrained = jnp.sum((f0 - record.y_test) ** 2) / (2 * m)
    first = jnp.broadcast_to(untrained, (by_shell.shape[0], 1))
    previous = jnp.concatenate([first, by_shell[:, :-1]], axis=1)
    return by_shell, previous - by_shell
