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


def roundoff_tolerance(matrix: np.ndarray) -> float | np.floating:
    """Size of round-off in a symmetric eigenproblem: a few n·eps·‖M‖."""
    n = matrix.shape[0]
    eps = np.finfo(matrix.dtype).eps if np.issubdtype(matrix.dtype, np.floating) else 1e-16
    scale = float(np.abs(matrix).max()) if matrix.size else 0.0
    return float(10.0 * max(n, 1) * eps * scale)


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


def check_state(op, e0, ts):
    """Common checks of `solve_kato` / `solve_direct` arguments, done before tracing.

    Returns the concrete $M(t_0)$ it checked (NumPy), or None under `jit`/`vmap`.
    """
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
        return None
    # The operator itself at the ends of the run: catches shape, symmetry, NaN and negativity.
    first = None
    for t in dict.fromkeys([float(concrete_ts[0]), float(concrete_ts[-1])]):
        m = as_concrete(op(np.asarray(t, dtype=op.dtype)))
        if m is not None:
            check_matrix_values(m, f"M(t={t:g})")
        first = m if first is None else first
    return first


# ---------------------------------------------------------------------------------------------
# Checks inside a solve: traced, once per right-hand-side evaluation.


def symmetry_tolerance(dtype) -> float:
    """Relative asymmetry max|M − Mᵀ| / max|M| accepted inside a solve: √eps of the dtype.

    Looser than round-off on purpose: a Gram matrix J Jᵀ from reduced-precision products
    (float32 on some accelerators) is asymmetric at ~1e-5 and still a valid operator, while a
    genuinely non-symmetric M is asymmetric at O(1).
    """
    return float(np.sqrt(np.finfo(dtype).eps))


def negativity_tolerance(n: int, dtype) -> float:
    """Relative size λ_min / λ_max below −this that counts as a negative eigenvalue."""
    return float(100.0 * max(n, 1) * np.finfo(dtype).eps)


def operator_is_invalid(matrix, derivative=None, eigenvalues=None):
    """Traced: True where M(t) (or Ṁ(t)) is non-finite, non-symmetric or negative-definite."""
    import jax.numpy as jnp

    def asymmetric(x):
        scale = jnp.max(jnp.abs(x))
        return jnp.max(jnp.abs(x - x.T)) > symmetry_tolerance(x.dtype) * scale

    bad = ~jnp.all(jnp.isfinite(matrix)) | asymmetric(matrix)
    if derivative is not None:
        bad = bad | ~jnp.all(jnp.isfinite(derivative)) | asymmetric(derivative)
    if eigenvalues is not None:
        scale = jnp.max(jnp.abs(eigenvalues))
        tol = negativity_tolerance(eigenvalues.shape[0], eigenvalues.dtype)
        bad = bad | (jnp.min(eigenvalues) < -tol * scale)
    return bad


def describe_operator(op, t: float, *, with_derivative: bool) -> str | None:
    """What is wrong with M(t) (and Ṁ(t)), evaluated eagerly; None when nothing is."""
    t_arr = np.asarray(t, dtype=op.dtype)
    if with_derivative:
        m, dm = (np.asarray(x) for x in op.value_and_derivative(t_arr))
    else:
        m, dm = np.asarray(op(t_arr)), None
    for name, x in (("M", m), ("dM/dt", dm)):
        if x is None:
            continue
        if not np.all(np.isfinite(x)):
            return f"{name}(t={t:.6g}) contains NaN or Inf"
        scale = float(np.abs(x).max()) if x.size else 0.0
        asym = float(np.abs(x - x.T).max()) if x.size else 0.0
        if asym > symmetry_tolerance(x.dtype) * scale:
            return (
                f"{name}(t={t:.6g}) is not symmetric: max |A - A^T| = {asym:.3e} "
                f"(max |A| = {scale:.3e})"
            )
    lam = np.linalg.eigvalsh(m.astype(np.float64))
    scale = float(np.abs(lam).max()) if lam.size else 0.0
    if lam.size and lam.min() < -negativity_tolerance(m.shape[0], m.dtype) * scale:
        return f"M(t={t:.6g}) has a negative eigenvalue {lam.min():.3e} (max |λ| = {scale:.3e})"
    return None


def check_operator_type(op) -> None:
    """The operator argument is an operator object, not a bare array or function."""
    # Duck-typed (an operator has a value and a derivative): this layer sits below `operators`.
    if callable(op) and hasattr(op, "value_and_derivative") and hasattr(op, "dtype"):
        return
    if hasattr(op, "shape") and hasattr(op, "dtype"):
        raise TypeError(
            "the operator must be an operator object, got a bare array of shape "
            f"{tuple(op.shape)}: wrap a constant kernel as sj.FrozenOperator(M) or a function of "
            "time as sj.CallableOperator(fn)"
        )
    if callable(op):
        raise TypeError(
            "the operator must be an operator object, got a plain callable: wrap it as "
            "sj.CallableOperator(fn)"
        )
    raise TypeError(f"the operator must be an AbstractOperator, got {type(op).__name__}")


def check_solver_options(*, rtol=None, atol=None, max_steps=None, dt0=None) -> None:
    """Tolerances finite and positive, max_steps a positive integer, dt0 finite and positive."""
    for name, value in (("rtol", rtol), ("atol", atol)):
        if value is None:
            continue
        concrete = as_concrete(value)
        if concrete is None:
            continue
        if concrete.ndim != 0 or not np.isfinite(concrete) or concrete < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if rtol is not None and atol is not None:
        r, a = as_concrete(rtol), as_concrete(atol)
        if r is not None and a is not None and r == 0 and a == 0:
            raise ValueError("rtol and atol cannot both be 0")
    if max_steps is not None and (
        isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1
    ):
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    if dt0 is not None:
        concrete = as_concrete(dt0)
        if concrete is not None and (not np.isfinite(concrete) or concrete <= 0):
            raise ValueError(f"dt0 must be a finite number > 0, got {dt0!r}")
