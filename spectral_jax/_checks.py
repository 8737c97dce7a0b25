"""Eager input checks with messages that name the argument and what was expected."""

from __future__ import annotations

import jax
import numpy as np


def as_concrete(x):
    """`x` as a NumPy array, or None when it is a tracer (checks are skipped under jit/vmap)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def check_square(shape, name: str) -> None:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {tuple(shape)}")


def roundoff_tolerance(matrix: np.ndarray) -> float:
    """Size of round-off in a symmetric eigenproblem: a few n·eps·‖M‖."""
    n = matrix.shape[0]
    eps = np.finfo(matrix.dtype).eps if np.issubdtype(matrix.dtype, np.floating) else 1e-16
    scale = float(np.abs(matrix).max()) if matrix.size else 0.0
    return 10.0 * max(n, 1) * eps * scale


def check_matrix_values(matrix: np.ndarray, name: str, *, check_psd: bool = True) -> None:
    """Finite, symmetric and (to round-off) positive semi-definite."""
    check_square(matrix.shape, name)
    if not np.issubdtype(matrix.dtype, np.floating):
        raise TypeError(f"{name} must have a floating dtype, got {matrix.dtype}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or Inf")
    tol = roundoff_tolerance(matrix)
    asym = float(np.abs(matrix - matrix.T).max()) if matrix.size else 0.0
    if asym > tol:
        raise ValueError(f"{name} is not symmetric: max |M - M^T| = {asym:.3e} > {tol:.3e}")
    if check_psd and matrix.size:
        lam_min = float(np.linalg.eigvalsh(matrix.astype(np.float64)).min())
        if lam_min < -tol:
            raise ValueError(
                f"{name} has a negative eigenvalue {lam_min:.3e} beyond round-off ({-tol:.3e})"
            )


def check_times(ts, name: str = "ts") -> np.ndarray | None:
    concrete = as_concrete(ts)
    if np.ndim(ts) != 1:
        raise ValueError(f"{name} must be 1-D, got shape {np.shape(ts)}")
    if np.shape(ts)[0] < 1:
        raise ValueError(f"{name} must hold at least one time")
    if concrete is not None:
        if not np.all(np.isfinite(concrete)):
            raise ValueError(f"{name} contains NaN or Inf")
        if np.any(np.diff(concrete) <= 0):
            bad = int(np.argmax(np.diff(concrete) <= 0))
            raise ValueError(
                f"{name} must be strictly increasing; {name}[{bad}]={concrete[bad]!r} >= "
                f"{name}[{bad + 1}]={concrete[bad + 1]!r}"
            )
    return concrete


def check_state(op, e0, ts) -> None:
    """Common checks of `solve_kato` / `solve_direct` arguments, done before tracing."""
    n = op.shape[0]
    if np.ndim(e0) != 1 or np.shape(e0)[0] != n:
        raise ValueError(f"e0 must have shape ({n},) to match the operator, got {np.shape(e0)}")
    # `.dtype` first: np.result_type(jax_array) is deprecated (and fails on tracers).
    e_dtype = np.dtype(e0.dtype) if hasattr(e0, "dtype") else np.result_type(np.asarray(e0))
    if not np.issubdtype(e_dtype, np.floating):
        raise TypeError(f"e0 must be floating point, got {e_dtype}")
    if e_dtype != np.dtype(op.dtype):
        raise TypeError(
            f"dtype mix: e0 is {e_dtype} but the operator is {np.dtype(op.dtype)}; cast one"
        )
    concrete_ts = check_times(ts)
    e0c = as_concrete(e0)
    if e0c is not None and not np.all(np.isfinite(e0c)):
        raise ValueError("e0 contains NaN or Inf")
    if concrete_ts is None:
        return
    # The operator itself at the ends of the run: catches shape, symmetry, NaN and negativity.
    for t in {float(concrete_ts[0]), float(concrete_ts[-1])}:
        m = as_concrete(op(np.asarray(t, dtype=op.dtype)))
        if m is not None:
            check_matrix_values(m, f"M(t={t:g})")
