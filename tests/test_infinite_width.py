"""The infinite-width NNGP/NTK of MLPs: closed forms against quadrature, a Monte Carlo NNGP,
the width^-1/2 convergence of finite networks' eNTK, and neural-tangents' numbers.

The benchmark counterpart (convergence figure, cost, the full neural-tangents comparison) is
benchmarks/bench_infinite_width.py, its results benchmarks/infinite_width.md.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import erf

import spectral_jax
from spectral_jax.networks import Activation, infinite_width_nngp, infinite_width_ntk

KERNELS = (infinite_width_nngp, infinite_width_ntk)


def _inputs(n, d, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal((n, d)))


def _sphere(n, d, seed):
    """Inputs with |x|² = d, so that Σ₁(x, x) = σ_w² + σ_b² (moderate variances)."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    return jnp.asarray(x * np.sqrt(d) / np.linalg.norm(x, axis=1, keepdims=True))


def _relative(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


# A finite network of the same convention, in plain JAX (the independent reference).
def _init(seed, widths):
    """Standard-normal (W, b) of each Dense layer (NumPy's generator: no compilation)."""
    rng = np.random.default_rng(seed)
    return [
        (jnp.asarray(rng.standard_normal((fan_in, fan_out))),
         jnp.asarray(rng.standard_normal(fan_out)))
        for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True)
    ]


class _MLP:
    """`apply_fn(params, x) -> (n,)`: Dense layers σ_w/√fan_in · h W + σ_b b, φ in between.

    `dense_factors` (the layer inputs [σ_w a/√fan_in, σ_b] and the back-propagated ∂f/∂y of
    every layer) lets `empirical_ntk` use `STRUCTURED`, whose cost is linear in the number of
    inputs; `test_structured_factors_are_those_of_the_network` checks it against
    `NTK_VECTOR_PRODUCTS`, which only differentiates `apply_fn`.
    """

    def __init__(self, w_std, b_std, activation=jax.nn.relu):
        self.w_std, self.b_std, self.activation = w_std, b_std, activation

    def _tapped(self, params, x, deltas):
        h, inputs = x, []
        for i, ((w, b), delta) in enumerate(zip(params, deltas, strict=True)):
            if i:
                h = self.activation(h)
            inputs.append(h)
            h = self.w_std / np.sqrt(w.shape[0]) * (h @ w) + self.b_std * b[None, :] + delta
        return h[:, 0], inputs

    def __call__(self, params, x):
        return self._tapped(params, x, [0.0] * len(params))[0]

    def dense_factors(self, params, x):
        n = x.shape[0]
        deltas = [jnp.zeros((n, w.shape[1]), x.dtype) for w, _ in params]
        out, vjp, inputs = jax.vjp(lambda d: self._tapped(params, x, d), deltas, has_aux=True)
        (grads,) = vjp(jnp.ones_like(out))
        bias = jnp.full((n, 1), self.b_std, x.dtype)
        return [
            (jnp.concatenate([self.w_std / np.sqrt(a.shape[1]) * a, bias], axis=1), g)
            for a, g in zip(inputs, grads, strict=True)
        ]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("activation", ["relu", Activation.ERF, jnp.tanh])
def test_depth_one_is_the_linear_model(kernel, activation):
    x1, x2 = _inputs(6, 5, 0), _inputs(4, 5, 1)
    w, b = 1.7, 0.3
    expected = w**2 * (x1 @ x2.T) / 5.0 + b**2
    got = kernel(x1, x2, depth=1, activation=activation, w_std=w, b_std=b)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-14)
    same = kernel(x1, depth=1, activation=activation, w_std=w, b_std=b)
    np.testing.assert_allclose(same, w**2 * (x1 @ x1.T) / 5.0 + b**2, rtol=1e-14)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("depth", [2, 4])
def test_erf_closed_form_equals_quadrature(kernel, depth):
    # Measured max relative differences (depths 2 and 4, both kernels): inputs on the sphere
    # (Σ(x, x) ≤ 1.73) 4e-14 at the default 64 nodes; Gaussian inputs (Σ₁(x, x) up to 6, which
    # the fixed rule resolves less well) 2e-6 at 64 nodes, 2e-11 at 128, 7e-16 at 256.
    opts = dict(depth=depth, w_std=1.3, b_std=0.2)
    x1, x2 = _sphere(7, 4, 2), _sphere(5, 4, 3)
    closed = kernel(x1, x2, activation="erf", **opts)
    assert _relative(kernel(x1, x2, activation=erf, **opts), closed) < 1e-12
    x1, x2 = _inputs(7, 4, 2), _inputs(5, 4, 3)
    closed = kernel(x1, x2, activation=Activation.ERF, **opts)
    quad = kernel(x1, x2, activation=lambda u: erf(u), quadrature_points=128, **opts)
    assert _relative(quad, closed) < 1e-10


@pytest.mark.parametrize("depth", [2, 4])
def test_relu_closed_form_equals_quadrature_loosely_and_converging(depth):
    # ReLU's kink (φ' a step) makes Gauss–Hermite converge only like a power of the nodes.
    # Measured max relative differences at 64 / 256 nodes: NNGP 3.0e-3 / 6.6e-4 (depth 2),
    # 1.1e-3 / 2.9e-4 (depth 4); NTK 1.3e-2 / 5.3e-3 (depth 2), 2.8e-2 / 6.7e-3 (depth 4).
    x1, x2 = _inputs(7, 4, 4), _inputs(5, 4, 5)
    relu = lambda u: jnp.maximum(u, 0.0)  # noqa: E731
    opts = dict(depth=depth, w_std=1.3, b_std=0.2)
    for kernel, tol in ((infinite_width_nngp, 0.01), (infinite_width_ntk, 0.05)):
        closed = kernel(x1, x2, activation="relu", **opts)
        coarse = _relative(kernel(x1, x2, activation=relu, **opts), closed)
        fine = _relative(kernel(x1, x2, activation=relu, quadrature_points=256, **opts), closed)
        assert coarse < tol
        assert fine < 0.6 * coarse


def test_nngp_depth_two_relu_matches_sampled_networks():
    # Depth 2: f = σ_w/√n relu(h₁) W₂ + σ_b b₂ with h₁ exactly Gaussian, so Cov[f(x), f(x')]
    # is the NNGP at any width n; only the sampling error (≈ √2/√samples ≈ 0.7%) remains.
    x = np.random.default_rng(6).standard_normal((5, 3))
    w, b, width, samples = 1.4, 0.5, 32, 40_000
    rng = np.random.default_rng(7)  # `samples` independent networks, all in NumPy
    w1, b1 = rng.standard_normal((samples, 3, width)), rng.standard_normal((samples, 1, width))
    w2, b2 = rng.standard_normal((samples, width)), rng.standard_normal((samples, 1))
    hidden = np.maximum(w / np.sqrt(3) * np.einsum("nd,sdk->snk", x, w1) + b * b1, 0.0)
    outputs = w / np.sqrt(width) * np.einsum("snk,sk->sn", hidden, w2) + b * b2  # (samples, 5)
    sampled = outputs.T @ outputs / samples
    exact = infinite_width_nngp(jnp.asarray(x), depth=2, activation="relu", w_std=w, b_std=b)
    # Measured: 1.3% for this seed, 0.2% to 1.8% for seeds 7 to 11.
    assert _relative(jnp.asarray(sampled), exact) < 0.03


def test_structured_factors_are_those_of_the_network():
    apply_fn, x = _MLP(1.3, 0.2, jnp.tanh), _inputs(6, 5, 11)
    params = _init(0, [5, 24, 24, 1])
    kernels = [
        spectral_jax.empirical_ntk(apply_fn, params, x, implementation=implementation)
        for implementation in (spectral_jax.NTKImplementation.STRUCTURED,
                               spectral_jax.NTKImplementation.NTK_VECTOR_PRODUCTS)
    ]
    np.testing.assert_allclose(*kernels, rtol=1e-12)


def _convergence_errors(widths, seeds):
    """Relative Frobenius error of the depth-3 ReLU eNTK, averaged over seeds, per width."""
    x = _inputs(16, 8, 8)
    w, b = 1.0, 0.1
    apply_fn = _MLP(w, b)
    limit = infinite_width_ntk(x, depth=3, activation="relu", w_std=w, b_std=b)
    errors = []
    for width in widths:
        per_seed = []
        for seed in range(seeds):
            params = _init(seed, [8, width, width, 1])
            k = spectral_jax.empirical_ntk(
                apply_fn, params, x, implementation=spectral_jax.NTKImplementation.STRUCTURED
            )
            per_seed.append(float(jnp.linalg.norm(k - limit) / jnp.linalg.norm(limit)))
        errors.append(np.mean(per_seed))
    return np.asarray(errors)


def test_empirical_ntk_converges_at_rate_width_to_the_minus_half():
    # Measured with 8 seeds: mean errors 0.18, 0.12, 0.086, 0.060, 0.047 (slope -0.49); seeds
    # 0-3 (below): slope -0.54, error 0.041 at 4096; every choice of 4 of the 8 seeds gives a
    # slope in [-0.60, -0.40]. About 10 s (compilation per width included).
    widths = np.array([256, 512, 1024, 2048, 4096])
    errors = _convergence_errors(widths, seeds=4)
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert -0.7 <= slope <= -0.3
    assert errors[-1] < 0.06


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("activation", ["relu", "erf", jnp.tanh])
def test_kernels_are_symmetric_and_positive_semi_definite(kernel, activation):
    x = jnp.concatenate([_inputs(12, 6, 9), _inputs(1, 6, 9)])  # a repeated point: singular
    k = kernel(x, depth=3, activation=activation, w_std=1.5, b_std=0.1)
    assert np.array_equal(np.asarray(k), np.asarray(k).T)
    eigenvalues = np.linalg.eigvalsh(np.asarray(k))
    assert eigenvalues.min() >= -1e-12 * eigenvalues.max()
    # Without x2 and with x2 = x1: the same kernel. ReLU's NTK only to 1e-8 (measured 2.4e-9):
    # at x = x' its slope term (π − θ)/2π has an infinite derivative in Σ(x, x'), so rounding
    # of 1e-16 in Σ (computed as x·x' here, as |x|² on the diagonal) moves θ by ~1e-8; without
    # x2 the diagonal is computed from the same numbers and θ = 0 exactly.
    with_x2 = kernel(x, x, depth=3, activation=activation, w_std=1.5, b_std=0.1)
    rtol = 1e-8 if (activation, kernel) == ("relu", infinite_width_ntk) else 1e-13
    np.testing.assert_allclose(with_x2, k, rtol=rtol)


# neural-tangents 0.6.5 in float64: stax.serial(Dense(512, W, b), φ, ..., Dense(1, W, b))
# kernel_fn(x1, x2, 'ntk'), x1 (3, 4) and x2 (2, 4) drawn in turn from
# np.random.default_rng(1); printed by benchmarks/nt_reference_infinite_width.py, whose full
# comparison (52 input pairs, agreement ≤ 1e-13) is in benchmarks/infinite_width.md.
NT_REFERENCE = {
    ("relu", 3, 1.5, 0.1): [[0.3617310896876303, 0.6419813693534338],
                            [0.636275801296101, 0.7329423177453718],
                            [0.426747790440963, 0.22407839363165605]],
    ("erf", 3, 1.5, 0.1): [[-2.2805723650875223, -0.20343100189564814],
                           [-0.18268668782218445, 0.4590333792487278],
                           [0.07829593214435532, -0.7395851787540761]],
    ("relu", 4, 1.0, 0.0): [[0.03619323874807787, 0.04278432654242541],
                            [0.04224548592502657, 0.04279513812017891],
                            [0.02563708564528541, 0.01576030615480301]],
    ("erf", 2, 1.0, 0.5): [[0.1633400762691027, 0.48848899683192937],
                           [0.5045942348899587, 0.6179818909392861],
                           [0.5897496975723591, 0.5218953523328621]],
}


@pytest.mark.parametrize("case", sorted(NT_REFERENCE))
def test_matches_neural_tangents(case):
    activation, depth, w, b = case
    rng = np.random.default_rng(1)
    x1, x2 = jnp.asarray(rng.standard_normal((3, 4))), jnp.asarray(rng.standard_normal((2, 4)))
    got = infinite_width_ntk(x1, x2, depth=depth, activation=activation, w_std=w, b_std=b)
    np.testing.assert_allclose(got, np.asarray(NT_REFERENCE[case]), rtol=1e-12)


def test_dtype_and_jit():
    x = _inputs(5, 3, 10)
    k64 = infinite_width_ntk(x, depth=3, activation="erf", w_std=1.2, b_std=0.3)
    k32 = infinite_width_ntk(x.astype(jnp.float32), depth=3, activation="erf", w_std=1.2,
                             b_std=0.3)
    assert k64.dtype == jnp.float64 and k32.dtype == jnp.float32
    np.testing.assert_allclose(k32, k64, rtol=1e-5)
    jitted = jax.jit(infinite_width_ntk, static_argnames=("depth", "activation"))
    traced = jitted(x, depth=3, activation="erf", w_std=jnp.asarray(1.2), b_std=0.3)
    np.testing.assert_allclose(traced, k64, rtol=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(depth=0), "depth must be an int >= 1"),
        (dict(depth=2.0), "depth must be an int >= 1"),
        (dict(depth=2, activation="gelu"), "unknown activation name 'gelu'"),
        (dict(depth=2, activation=3), "activation must be"),
        (dict(depth=2, activation=lambda u: u.sum()), "must be elementwise"),
        (dict(depth=2, w_std=-1.0), "w_std must be a finite scalar >= 0"),
        (dict(depth=2, b_std=float("nan")), "b_std must be a finite scalar >= 0"),
        (dict(depth=2, quadrature_points=0), "quadrature_points must be an int in"),
        (dict(depth=2, quadrature_points=400), r"quadrature_points must be an int in \[1, 256\]"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        infinite_width_ntk(_inputs(3, 2, 0), **kwargs)


def test_bad_inputs_raise():
    x = _inputs(3, 2, 0)
    with pytest.raises(ValueError, match="x1 must be a non-empty 2-D array"):
        infinite_width_ntk(x[0], depth=2)
    with pytest.raises(ValueError, match="infinite_width_nngp: x2 must be a non-empty 2-D"):
        infinite_width_nngp(x, x[None], depth=2)
    with pytest.raises(ValueError, match="x1 must be a non-empty 2-D array"):
        infinite_width_ntk(x[:0], depth=2)
    with pytest.raises(ValueError, match="same feature dimension"):
        infinite_width_ntk(x, _inputs(3, 4, 1), depth=2)
