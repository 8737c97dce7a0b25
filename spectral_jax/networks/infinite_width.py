"""Infinite-width NNGP and NTK of the MLP family: the exact lazy reference.

Convention: neural-tangents' `stax` with `parameterization='ntk'`. The network is `depth`
Dense layers with the activation φ between consecutive ones (depth − 1 activations) and a
scalar output,

$$h_1 = \\frac{\\sigma_w}{\\sqrt{d}}\\, x W_1 + \\sigma_b b_1, \\qquad
h_{l+1} = \\frac{\\sigma_w}{\\sqrt{n_l}}\\, \\phi(h_l) W_{l+1} + \\sigma_b b_{l+1},$$

all $W_l$, $b_l$ standard normal, $f = h_{\\text{depth}}$. As the widths $n_l \\to \\infty$
the output is a Gaussian process with covariance (NNGP) $\\Sigma$ and the empirical NTK
$J J^T$ (`empirical_ntk`, gradients w.r.t. all W and b) tends to the deterministic $\\Theta$:

$$\\Sigma_1 = \\sigma_w^2\\, x \\cdot x'/d + \\sigma_b^2, \\qquad \\Theta_1 = \\Sigma_1,$$
$$\\Sigma_{l+1} = \\sigma_w^2\\, \\mathbb{E}[\\phi(u)\\phi(v)] + \\sigma_b^2, \\qquad
\\Theta_{l+1} = \\Sigma_{l+1} + \\sigma_w^2\\, \\mathbb{E}[\\phi'(u)\\phi'(v)]\\, \\Theta_l,$$

with $(u, v) \\sim \\mathcal{N}(0, [[\\Sigma_l(x,x), \\Sigma_l(x,x')], [\\Sigma_l(x,x'),
\\Sigma_l(x',x')]])$. So depth 1 is the linear model, Σ = Θ = σ_w² x·x'/d + σ_b².

The two expectations are in closed form for ReLU (arc-cosine kernels, Cho & Saul 2009) and
erf (Williams 1997); for any other elementwise activation (a callable) they are computed by a
two-dimensional Gauss–Hermite rule, φ' by forward-mode differentiation.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._checks import as_concrete

__all__ = ["Activation", "infinite_width_nngp", "infinite_width_ntk"]

HIGHEST = jax.lax.Precision.HIGHEST
# NumPy's Gauss–Hermite nodes overflow from 372 points; 256² evaluations per entry is plenty.
MAX_QUADRATURE_POINTS = 256


class Activation(enum.StrEnum):
    """The activations with closed-form kernels; any other is passed as a callable."""

    RELU = "relu"  # max(u, 0): arc-cosine kernels of order 1 (φ) and 0 (φ')
    ERF = "erf"  # erf(u): arcsine kernel (φ) and its derivative kernel (φ')


def infinite_width_ntk(
    x1: Float[ArrayLike, "n1 d"],
    x2: Float[ArrayLike, "n2 d"] | None = None,
    *,
    depth: int,
    activation: Activation | str | Callable = Activation.RELU,
    w_std: float | Float[ArrayLike, ""] = 1.0,
    b_std: float | Float[ArrayLike, ""] = 0.0,
    quadrature_points: int = 64,
) -> Float[Array, "n1 n2"]:
    """Infinite-width neural tangent kernel Θ(X₁, X₂) of an MLP (neural-tangents convention).

    The exact lazy-training reference: the limit of `empirical_ntk` of the network in the
    module docstring (Dense layers $h \\mapsto \\sigma_w h W/\\sqrt{\\text{fan-in}} +
    \\sigma_b b$, standard-normal W and b, φ between consecutive layers, scalar output) as
    all hidden widths tend to infinity. Matches neural-tangents'
    `stax.serial(Dense(n, W_std, b_std), φ, ..., Dense(1, W_std, b_std))` `kernel_fn(x1, x2,
    'ntk')` (benchmarks/infinite_width.md), and `MLP(in_features, width, depth - 1,
    weight_std=w_std, bias_std=b_std)` (whose `depth` counts hidden layers). Like
    `empirical_ntk` it is **not** divided by n.

    Computed in the dtype of the inputs; can be jitted with `depth`, `activation` and
    `quadrature_points` static (`w_std`, `b_std` may be traced; their checks are then
    skipped).

    **Arguments:**
    - `x1`: (n1, d) inputs; `x2`: (n2, d) inputs of the second argument (default `x1`: the
      result is then exactly symmetric, and ReLU's NTK exact at x = x', where with `x2` given
      its slope term, infinitely sensitive to Σ(x, x') there, carries ≈ 1e-8 of round-off).
    - `depth`: number of Dense layers, ≥ 1 (depth − 1 activations; 1 is the linear model).
    - `activation`: `Activation.RELU` / `"relu"`, `Activation.ERF` / `"erf"` (closed forms), or
      an elementwise JAX-differentiable callable such as `jnp.tanh` (Gauss–Hermite quadrature;
      a new callable object, e.g. a fresh lambda, recompiles).
    - `w_std`, `b_std`: σ_w, σ_b ≥ 0 of every layer.
    - `quadrature_points`: Gauss–Hermite nodes per dimension (1 to 256) for a callable (the
      rule uses its square per kernel entry). Smooth activations converge fast (erf: ≈ 1e-14
      relative at 64 points while Σ(x, x) ≲ 2, ≈ 1e-6 when Σ(x, x) reaches 6, then 1e-11 at
      128); kinks slowly (ReLU as a callable: NNGP ≈ 3e-3, NTK ≈ 1e-2 to 3e-2 at 64 points,
      φ' being a step). Prefer the closed forms where they exist.

    **Returns:** Θ, shape (n1, n2).

    **Raises:** `ValueError` for `depth` < 1, inputs that are not non-empty 2-D (n, d)
    arrays with d ≥ 1, `x1`/`x2` feature dimensions that differ, a negative or non-finite
    `w_std`/`b_std`, an unknown activation name, a callable that is not elementwise, or a
    `quadrature_points` that is not an int in [1, 256].
    """
    args = _check("infinite_width_ntk", x1, x2, depth, activation, w_std, b_std,
                  quadrature_points)
    return _kernels(*args)[1]


def infinite_width_nngp(
    x1: Float[ArrayLike, "n1 d"],
    x2: Float[ArrayLike, "n2 d"] | None = None,
    *,
    depth: int,
    activation: Activation | str | Callable = Activation.RELU,
    w_std: float | Float[ArrayLike, ""] = 1.0,
    b_std: float | Float[ArrayLike, ""] = 0.0,
    quadrature_points: int = 64,
) -> Float[Array, "n1 n2"]:
    """Infinite-width NNGP kernel Σ(X₁, X₂) = Cov[f(x), f(x')] at initialisation.

    The same network, convention and arguments as `infinite_width_ntk` (neural-tangents'
    `kernel_fn(x1, x2, 'nngp')`); Σ is the covariance of the scalar output over the random
    standard-normal W and b as all hidden widths tend to infinity.

    **Returns:** Σ, shape (n1, n2).

    **Raises:** as `infinite_width_ntk`.
    """
    args = _check("infinite_width_nngp", x1, x2, depth, activation, w_std, b_std,
                  quadrature_points)
    return _kernels(*args)[0]


def _check(where, x1, x2, depth, activation, w_std, b_std, points):
    """Eager checks; the arguments of `_kernels`, inputs in their common floating dtype."""
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"{where}: depth must be an int >= 1 (Dense layers), got {depth!r}")
    if (
        isinstance(points, bool)
        or not isinstance(points, (int, np.integer))
        or not 1 <= points <= MAX_QUADRATURE_POINTS
    ):
        raise ValueError(
            f"{where}: quadrature_points must be an int in [1, {MAX_QUADRATURE_POINTS}] (nodes "
            f"per dimension of the Gauss–Hermite rule), got {points!r}"
        )
    act = _check_activation(activation, where)
    same = x2 is None
    arrays = [jnp.asarray(x1)] + ([] if same else [jnp.asarray(x2)])
    for name, x in zip(("x1", "x2"), arrays):
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(
                f"{where}: {name} must be a non-empty 2-D array (n, d) with n, d >= 1, got "
                f"shape {x.shape}"
            )
    if not same and arrays[0].shape[1] != arrays[1].shape[1]:
        raise ValueError(
            f"{where}: x1 and x2 must have the same feature dimension d; x1 has "
            f"{arrays[0].shape[1]} (shape {arrays[0].shape}) but x2 has {arrays[1].shape[1]} "
            f"(shape {arrays[1].shape})"
        )
    dtype = functools.reduce(jnp.promote_types, [x.dtype for x in arrays])
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)  # integer inputs: the default float dtype
    for name, std in (("w_std", w_std), ("b_std", b_std)):
        value = as_concrete(std)
        if value is not None and (value.shape != () or not np.isfinite(value) or value < 0):
            raise ValueError(f"{where}: {name} must be a finite scalar >= 0, got {std!r}")
    arrays = [x.astype(dtype) for x in arrays]
    std = [jnp.asarray(s).astype(dtype) for s in (w_std, b_std)]
    if callable(act):
        probe = jax.ShapeDtypeStruct((2, 3), dtype)
        out = jax.eval_shape(act, probe)
        if getattr(out, "shape", None) != (2, 3):
            raise ValueError(
                f"{where}: activation {act!r} must be elementwise (shape (2, 3) in, the same "
                f"out), got {getattr(out, 'shape', type(out).__name__)}"
            )
    x2 = None if same else arrays[1]
    return arrays[0], x2, std[0], std[1], int(depth), act, int(points)


def _check_activation(activation, where: str) -> Activation | Callable:
    if isinstance(activation, str):  # an Activation is a str too
        try:
            return Activation(activation.lower())
        except ValueError:
            names = ", ".join(repr(a.value) for a in Activation)
            raise ValueError(
                f"{where}: unknown activation name {activation!r}; use {names} (closed forms) "
                f"or pass an elementwise callable such as jnp.tanh (quadrature)"
            ) from None
    if callable(activation):
        return activation
    raise ValueError(
        f"{where}: activation must be an Activation, 'relu', 'erf' or an elementwise "
        f"callable, got {activation!r}"
    )


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _kernels(x1, x2, w_std, b_std, depth, activation, points):
    """(Σ, Θ) of the last layer. Symmetric case (x2 None): the diagonal of Σ is read off the
    matrix, Σ₁ is symmetrised, and so is each quadrature layer (the closed forms keep exact
    symmetry; symmetrising them anyway would make XLA fuse the whole elementwise chain into
    the transpose and evaluate it twice), so Θ is exactly symmetric."""
    same = x2 is None
    x2 = x1 if same else x2
    dim = x1.shape[1]
    w2, b2 = w_std * w_std, b_std * b_std
    sigma = w2 * jnp.matmul(x1, x2.T, precision=HIGHEST) / dim + b2
    if same:
        sigma = _symmetrise(sigma)
        diag1 = diag2 = jnp.diagonal(sigma)
    else:
        diag1 = w2 * jnp.sum(x1 * x1, axis=1) / dim + b2
        diag2 = w2 * jnp.sum(x2 * x2, axis=1) / dim + b2
    theta = sigma
    rule = None if isinstance(activation, Activation) else _gauss_hermite(points, x1.dtype)
    moments = functools.partial(_moments, activation, rule)
    for _ in range(depth - 1):
        e_phi, e_dphi = moments(diag1[:, None], sigma, diag2[None, :])
        sigma = w2 * e_phi + b2
        theta = sigma + w2 * e_dphi * theta
        if same:
            if rule is not None:  # the closed forms are symmetric in (s11, s22) exactly
                sigma, theta = _symmetrise(sigma), _symmetrise(theta)
            diag1 = diag2 = jnp.diagonal(sigma)
        else:
            diag1 = w2 * moments(diag1, diag1, diag1)[0] + b2
            diag2 = w2 * moments(diag2, diag2, diag2)[0] + b2
    return sigma, theta


def _symmetrise(k):
    return (k + k.T) / 2.0


def _moments(activation, rule, s11, s12, s22):
    """(E[φ(u)φ(v)], E[φ'(u)φ'(v)]) for (u, v) ~ N(0, [[s11, s12], [s12, s22]]), elementwise
    over the broadcast shape of the three arrays."""
    if activation is Activation.RELU:
        return _relu_moments(s11, s12, s22)
    if activation is Activation.ERF:
        return _erf_moments(s11, s12, s22)
    s11, s12, s22 = jnp.broadcast_arrays(s11, s12, s22)
    one = functools.partial(_quadrature_moments, activation, rule)
    if s12.ndim < 2:
        return one(s11, s12, s22)
    # Row by row: one (n2, Q, Q) block of integrand values at a time, not (n1, n2, Q, Q).
    return jax.lax.map(lambda row: one(*row), (s11, s12, s22))


def _relu_moments(s11, s12, s22):
    """Arc-cosine kernels: with cos θ = s12/√(s11 s22),
    E[φφ] = √(s11 s22)(sin θ + (π − θ) cos θ)/(2π), E[φ'φ'] = (π − θ)/(2π)."""
    norm = jnp.sqrt(s11 * s22)
    positive = norm > 0.0
    cos = jnp.where(positive, s12 / jnp.where(positive, norm, 1.0), 0.0)
    cos = jnp.clip(cos, -1.0, 1.0)
    theta = jnp.arccos(cos)
    sin = jnp.sqrt(jnp.maximum(1.0 - cos * cos, 0.0))
    e_phi = norm * (sin + (jnp.pi - theta) * cos) / (2.0 * jnp.pi)
    e_dphi = (jnp.pi - theta) / (2.0 * jnp.pi)
    return e_phi, e_dphi


def _erf_moments(s11, s12, s22):
    """E[erf u erf v] = (2/π) arcsin(2 s12/√((1+2 s11)(1+2 s22))),
    E[erf' u erf' v] = (4/π)/√((1+2 s11)(1+2 s22) − 4 s12²)."""
    scale = (1.0 + 2.0 * s11) * (1.0 + 2.0 * s22)
    e_phi = (2.0 / jnp.pi) * jnp.arcsin(jnp.clip(2.0 * s12 / jnp.sqrt(scale), -1.0, 1.0))
    # (1+2a)(1+2b) − 4c² = 1 + 2(a + b) + 4(ab − c²), with ab − c² ≥ 0 (a covariance).
    det = 1.0 + 2.0 * (s11 + s22) + 4.0 * jnp.maximum(s11 * s22 - s12 * s12, 0.0)
    e_dphi = (4.0 / jnp.pi) / jnp.sqrt(det)
    return e_phi, e_dphi


def _gauss_hermite(points: int, dtype):
    """Nodes z and weights p for E_{z ~ N(0,1)}[g(z)] ≈ Σ p_k g(z_k)."""
    t, w = np.polynomial.hermite.hermgauss(points)
    return jnp.asarray(np.sqrt(2.0) * t, dtype=dtype), jnp.asarray(w / np.sqrt(np.pi), dtype)


def _quadrature_moments(activation, rule, s11, s12, s22):
    """2-D Gauss–Hermite with the symmetric square root [[a, c], [c, b]] of the covariance:
    u = a z₁ + c z₂, v = c z₁ + b z₂, so that swapping x and x' (s11 ↔ s22) swaps z₁ ↔ z₂, under
    which the tensor rule is invariant: the kernel comes out symmetric either way."""
    z, p = rule
    # √M = (M + √det I)/√(tr M + 2√det) for a 2×2 positive semi-definite M (Cayley–Hamilton).
    root_det = jnp.sqrt(jnp.maximum(s11 * s22 - s12 * s12, 0.0))
    norm = jnp.sqrt(jnp.maximum(s11 + s22 + 2.0 * root_det, 0.0))
    positive = norm > 0.0
    norm = jnp.where(positive, norm, 1.0)
    a, b, c = ((s11 + root_det) / norm, (s22 + root_det) / norm, s12 / norm)
    a, b, c = (jnp.where(positive, t, 0.0) for t in (a, b, c))

    def grid(first, second):  # first z₁ + second z₂ on the (Q, Q) nodes
        outer = jnp.multiply.outer
        return outer(first, z)[..., :, None] + outer(second, z)[..., None, :]

    u, v = grid(a, c), grid(c, b)  # (..., Q, Q): nodes a (z₁), b (z₂)

    def value_and_slope(t):  # φ and φ' of an elementwise φ in one forward-mode pass
        return jax.jvp(activation, (t,), (jnp.ones_like(t),))

    phi_u, dphi_u = value_and_slope(u)
    phi_v, dphi_v = value_and_slope(v)
    e_phi = jnp.einsum("...ab,...ab,a,b->...", phi_u, phi_v, p, p, precision=HIGHEST)
    e_dphi = jnp.einsum("...ab,...ab,a,b->...", dphi_u, dphi_v, p, p, precision=HIGHEST)
    return e_phi, e_dphi
