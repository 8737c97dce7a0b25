"""Data sets with controlled spectra: a power-law Gaussian teacher, and sklearn's digits.

The teacher (docs/theory.md §2.6): inputs $x \\sim \\mathcal N(0, \\Sigma)$ with covariance
eigenvalues $\\lambda_k = k^{-\\nu}$, k = 1..d ($\\nu$ = `input_exponent`), and a linear teacher
$y = w^* \\cdot x$ whose weights $w^*_k \\propto \\pm k^{(\\nu - \\beta)/2}$ ($\\beta$ =
`target_exponent`) put target energy $\\mathbb E[(w^*_k x_k)^2] \\propto k^{-\\beta}$ in
covariance mode k. For a linear (dot-product) kernel the covariance
eigenbasis is the population kernel eigenbasis, so the target energy in the kernel eigenbasis
falls as $k^{-\\beta}$; for an NTK it holds for the kernel's linear part. For a linear kernel
$\\nu$ is the spectral exponent called α in docs/theory.md §2.6; it gets its own name here
because α is the output scale in this subpackage.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["RegressionData", "power_law_teacher", "load_digits_data"]


class RegressionData(eqx.Module):
    """Train/test inputs and scalar targets, plus what generated them (if known).

    - `x_train` (n, d), `y_train` (n,), `x_test` (n_test, d), `y_test` (n_test,)
    - `eigenvalues` (d,): input covariance eigenvalues (None for real data)
    - `teacher` (d,): teacher weights in the eigenbasis (None for real data)
    - `basis` (d, d): columns are the covariance eigenvectors (None for real data)
    """

    x_train: Float[Array, "n d"]
    y_train: Float[Array, " n"]
    x_test: Float[Array, "m d"]
    y_test: Float[Array, " m"]
    eigenvalues: Float[Array, " d"] | None = None
    teacher: Float[Array, " d"] | None = None
    basis: Float[Array, "d d"] | None = None


def power_law_teacher(
    key,
    n_train: int,
    n_test: int,
    dim: int,
    *,
    input_exponent: float = 1.5,
    target_exponent: float = 2.0,
    noise_std: float = 0.0,
    rotate: bool = False,
    dtype=None,
) -> RegressionData:
    """Gaussian inputs with power-law covariance and a linear power-law teacher.

    **Arguments:**
    - `key`: a `jax.random` key.
    - `n_train`, `n_test`, `dim`: sizes.
    - `input_exponent` $\\nu$: covariance eigenvalues $k^{-\\nu}$.
    - `target_exponent` $\\beta$: target energy per mode $\\propto k^{-\\beta}$; the teacher is
      normalised so that $\\mathbb E[y^2] = 1$ without noise.
    - `noise_std`: standard deviation of Gaussian label noise (train and test targets).
    - `rotate`: if True the eigenbasis is a random rotation instead of the coordinate axes.
    - `dtype`: float dtype (default: JAX's default float).

    **Returns:** a `RegressionData` with `eigenvalues`, `teacher` and `basis` filled.
    """
    if min(n_train, n_test, dim) < 1:
        raise ValueError(
            f"power_law_teacher: n_train, n_test, dim must be >= 1; got {n_train}, {n_test}, {dim}"
        )
    if noise_std < 0:
        raise ValueError(f"power_law_teacher: noise_std must be >= 0, got {noise_std}")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    k_x, k_sign, k_rot, k_noise = jax.random.split(key, 4)
    k = jnp.arange(1, dim + 1, dtype=dtype)
    eigenvalues = k ** jnp.asarray(-input_exponent, dtype)
    energy = k ** jnp.asarray(-target_exponent, dtype)
    signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (dim,)), 1.0, -1.0).astype(dtype)
    teacher = signs * jnp.sqrt(energy / eigenvalues / jnp.sum(energy))
    if rotate:
        q, r = jnp.linalg.qr(jax.random.normal(k_rot, (dim, dim), dtype))
        basis = q * jnp.sign(jnp.diagonal(r))[None, :]
    else:
        basis = jnp.eye(dim, dtype=dtype)
    z = jax.random.normal(k_x, (n_train + n_test, dim), dtype)
    latent = z * jnp.sqrt(eigenvalues)[None, :]  # coordinates in the eigenbasis
    x = latent @ basis.T
    y = latent @ teacher
    if noise_std > 0:
        y = y + jnp.asarray(noise_std, dtype) * jax.random.normal(k_noise, y.shape, dtype)
    return RegressionData(
        x_train=x[:n_train],
        y_train=y[:n_train],
        x_test=x[n_train:],
        y_test=y[n_train:],
        eigenvalues=eigenvalues,
        teacher=teacher,
        basis=basis,
    )


def load_digits_data(
    n_train: int = 256, n_test: int = 256, *, seed: int = 0, dtype=None
) -> RegressionData:
    """scikit-learn's bundled 8×8 digits (offline), as a ±1 regression: even vs odd digit.

    Pixels are standardised per feature on the training split (constant pixels stay 0).
    scikit-learn is an optional extra (`pip install spectral_jax[data]`).

    **Raises:** `ImportError` with an install hint if scikit-learn is missing; `ValueError` if
    more points are asked for than the 1797 available.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits_data needs scikit-learn (optional extra): pip install 'spectral_jax[data]'"
        ) from err
    images, labels = load_digits(return_X_y=True)
    if n_train + n_test > images.shape[0]:
        raise ValueError(
            f"load_digits_data: {n_train} + {n_test} points requested, {images.shape[0]} available"
        )
    order = np.random.default_rng(seed).permutation(images.shape[0])
    x = images[order].astype(np.float64)
    y = np.where(labels[order] % 2 == 0, 1.0, -1.0)
    mean = x[:n_train].mean(axis=0)
    std = x[:n_train].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    cut = n_train + n_test
    return RegressionData(
        x_train=jnp.asarray(x[:n_train], dtype),
        y_train=jnp.asarray(y[:n_train], dtype),
        x_test=jnp.asarray(x[n_train:cut], dtype),
        y_test=jnp.asarray(y[n_train:cut], dtype),
    )
