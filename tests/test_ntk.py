"""eNTK implementations against each other, against a hand-written closed form, and adapters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from spectral_jax.networks import (
    MLP,
    NTKImplementation,
    RandomFeatures,
    ResidualMLP,
    empirical_ntk,
    from_linen,
    from_nnx,
    kernel_jvp,
    ntk_flow_derivative,
    ntk_fn,
    num_params,
)

IMPLEMENTATIONS = list(NTKImplementation)


def _inputs(n, d, seed):
    return jax.random.normal(jax.random.key(seed), (n, d), jnp.float64)


FAST_MODELS = ("residual",)  # the others are compile-bound: `slow`


def _models():
    f64 = dict(param_dtype=jnp.float64)
    return {
        "mlp_tanh_depth1": MLP(3, 12, 1, rngs=nnx.Rngs(0), **f64),
        "mlp_relu_depth3": MLP(3, 10, 3, activation=jax.nn.relu, rngs=nnx.Rngs(1), **f64),
        "mlp_nobias": MLP(3, 8, 2, bias_std=0.0, rngs=nnx.Rngs(2), **f64),
        "residual": ResidualMLP(3, 6, 1, rngs=nnx.Rngs(3), **f64),
        "random_features": RandomFeatures(3, 16, rngs=nnx.Rngs(4), **f64),
    }


def _rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize(
    "name",
    [n if n in FAST_MODELS else pytest.param(n, marks=pytest.mark.slow) for n in _models()],
)
def test_implementations_agree_and_chunking_is_exact(name):
    apply_fn, params = from_nnx(_models()[name])
    x1, x2 = _inputs(7, 3, 10), _inputs(5, 3, 11)
    ref = empirical_ntk(apply_fn, params, x1)
    ref_cross = empirical_ntk(apply_fn, params, x1, x2)
    assert ref.shape == (7, 7) and ref_cross.shape == (7, 5)
    for impl in IMPLEMENTATIONS:
        for chunk in (None, 3):  # 3 does not divide 7 or 5: padded last blocks are exercised
            k = empirical_ntk(apply_fn, params, x1, implementation=impl, chunk_size=chunk)
            assert _rel(k, ref) <= 1e-10, (impl, chunk)
        kc = empirical_ntk(apply_fn, params, x1, x2, implementation=impl, chunk_size=3)
        assert _rel(kc, ref_cross) <= 1e-10, impl
    # Symmetric PSD to round-off, and the cross kernel is the off-diagonal block of the joint.
    eps = np.finfo(np.float64).eps
    scale = float(jnp.max(jnp.abs(ref)))
    assert float(jnp.max(jnp.abs(ref - ref.T))) <= 10 * eps * scale * 7
    assert float(np.linalg.eigvalsh(np.asarray(ref)).min()) >= -10 * eps * scale * 7
    joint = empirical_ntk(apply_fn, params, jnp.concatenate([x1, x2]))
    assert _rel(joint[:7, 7:], ref_cross) <= 1e-12


def test_reference_matches_closed_form_one_hidden_layer():
    """Hand-derived eNTK of f(x) = (σ/√w) v·tanh(Wx/√d + β b) + β c, in NumPy."""
    d, w, beta = 3, 9, 0.1
    model = MLP(d, w, 1, rngs=nnx.Rngs(5), param_dtype=jnp.float64)
    apply_fn, params = from_nnx(model)
    x = np.asarray(_inputs(6, d, 12))
    wmat = np.asarray(model.hidden[0].kernel[...])
    b = np.asarray(model.hidden[0].bias[...])
    v = np.asarray(model.readout.kernel[...])[:, 0]
    pre = x @ wmat / np.sqrt(d) + beta * b[None, :]
    act, dact = np.tanh(pre), 1.0 - np.tanh(pre) ** 2
    g = dact * v[None, :] / np.sqrt(w)  # ∂f/∂pre
    k = (act @ act.T) / w + beta**2  # readout weight + bias
    k += (g @ g.T) * ((x @ x.T) / d + beta**2)  # first-layer weight + bias
    for impl in IMPLEMENTATIONS:
        got = np.asarray(empirical_ntk(apply_fn, params, jnp.asarray(x), implementation=impl))
        np.testing.assert_allclose(got, k, rtol=1e-12, atol=1e-13)


def test_random_features_kernel_is_feature_gram():
    model = RandomFeatures(3, 16, rngs=nnx.Rngs(6), param_dtype=jnp.float64)
    apply_fn, params = from_nnx(model)
    assert num_params(params) == 16  # only the readout is trained
    x = _inputs(5, 3, 13)
    phi = np.tanh(np.asarray(x) @ np.asarray(model.features[...]) / np.sqrt(3))
    expected = phi @ phi.T / 16
    got = empirical_ntk(apply_fn, params, x, implementation=NTKImplementation.STRUCTURED)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12)


class _NNXBatchNormNet(nnx.Module):
    def __init__(self, rngs):
        self.dense1 = nnx.Linear(3, 5, rngs=rngs, dtype=jnp.float64, param_dtype=jnp.float64)
        self.norm = nnx.BatchNorm(
            5, use_running_average=True, rngs=rngs, dtype=jnp.float64, param_dtype=jnp.float64
        )
        self.dense2 = nnx.Linear(5, 1, rngs=rngs, dtype=jnp.float64, param_dtype=jnp.float64)

    def __call__(self, x):
        return self.dense2(jnp.tanh(self.norm(self.dense1(x))))[:, 0]


class _LinenBatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Dense(5, dtype=jnp.float64, param_dtype=jnp.float64)(x)
        h = nn.BatchNorm(use_running_average=True, dtype=jnp.float64, param_dtype=jnp.float64)(h)
        return nn.Dense(1, dtype=jnp.float64, param_dtype=jnp.float64)(jnp.tanh(h))


def _explicit_kernel(k1, b1, mean, var, scale, bias, k2, b2, x, eps):
    """The same network written by hand; only (k1, b1, scale, bias, k2, b2) differentiated."""

    def f(p, x):
        h = x @ p["k1"] + p["b1"][None, :]
        h = (h - mean[None, :]) / jnp.sqrt(var[None, :] + eps) * p["scale"][None, :]
        h = h + p["bias"][None, :]
        return (jnp.tanh(h) @ p["k2"])[:, 0] + p["b2"][0]

    p = dict(k1=k1, b1=b1, scale=scale, bias=bias, k2=k2, b2=b2)
    return empirical_ntk(f, p, x)


def test_nnx_adapter_holds_batch_stats_fixed():
    net = _NNXBatchNormNet(nnx.Rngs(7))
    rng = np.random.default_rng(0)
    mean, var = jnp.asarray(rng.normal(size=5)), jnp.asarray(rng.uniform(0.5, 2.0, size=5))
    net.norm.mean.set_value(mean)
    net.norm.var.set_value(var)
    net.norm.scale.set_value(jnp.asarray(rng.uniform(0.5, 1.5, size=5)))
    apply_fn, params = from_nnx(net)
    assert num_params(params) == 3 * 5 + 5 + 5 + 5 + 5 + 1  # batch stats are not params
    x = _inputs(6, 3, 14)
    np.testing.assert_allclose(np.asarray(apply_fn(params, x)), np.asarray(net(x)), rtol=1e-14)
    expected = _explicit_kernel(
        net.dense1.kernel[...], net.dense1.bias[...], mean, var, net.norm.scale[...],
        net.norm.bias[...], net.dense2.kernel[...], net.dense2.bias[...], x, net.norm.epsilon,
    )
    for impl in (NTKImplementation.JACOBIAN_CONTRACTION, NTKImplementation.NTK_VECTOR_PRODUCTS):
        got = empirical_ntk(apply_fn, params, x, implementation=impl)
        assert _rel(got, expected) <= 1e-12
    with pytest.raises(ValueError, match="STRUCTURED"):
        empirical_ntk(apply_fn, params, x, implementation=NTKImplementation.STRUCTURED)


def test_linen_adapter_holds_batch_stats_fixed():
    # linen's BatchNorm mixes float32 constants internally: standard promotion for this test.
    with jax.numpy_dtype_promotion("standard"):
        _linen_adapter_check()


def _linen_adapter_check():
    module = _LinenBatchNormNet()
    x = _inputs(6, 3, 15)
    variables = module.init(jax.random.key(0), x)
    rng = np.random.default_rng(1)
    stats = {
        "mean": jnp.asarray(rng.normal(size=5)),
        "var": jnp.asarray(rng.uniform(0.5, 2.0, size=5)),
    }
    variables = {"params": variables["params"], "batch_stats": {"BatchNorm_0": stats}}
    apply_fn, params = from_linen(module, variables)
    assert set(params) == {"Dense_0", "BatchNorm_0", "Dense_1"}
    p = params
    expected = _explicit_kernel(
        p["Dense_0"]["kernel"], p["Dense_0"]["bias"], stats["mean"], stats["var"],
        p["BatchNorm_0"]["scale"], p["BatchNorm_0"]["bias"], p["Dense_1"]["kernel"],
        p["Dense_1"]["bias"], x, 1e-5,
    )
    got = empirical_ntk(apply_fn, params, x, implementation=NTKImplementation.NTK_VECTOR_PRODUCTS)
    assert _rel(got, expected) <= 1e-12
    with pytest.raises(ValueError, match="STRUCTURED"):
        empirical_ntk(apply_fn, params, x, implementation=NTKImplementation.STRUCTURED)
    with pytest.raises(ValueError, match="params"):
        from_linen(module, {"batch_stats": {}})


def test_structured_refuses_uncovered_parameters():
    """A model whose factors miss a parameter must not silently give a wrong kernel."""

    class Partial(MLP):
        def __init__(self, rngs):
            super().__init__(3, 4, 1, rngs=rngs, param_dtype=jnp.float64)
            self.extra = nnx.Param(jnp.ones((2,), jnp.float64))

    apply_fn, params = from_nnx(Partial(nnx.Rngs(0)))
    with pytest.raises(ValueError, match="cover"):
        empirical_ntk(apply_fn, params, _inputs(4, 3, 0), implementation=3)


def test_bad_arguments():
    apply_fn, params = from_nnx(MLP(3, 4, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64))
    x = _inputs(4, 3, 0)
    with pytest.raises(ValueError, match="chunk_size"):
        empirical_ntk(apply_fn, params, x, chunk_size=0)
    with pytest.raises(ValueError, match=r"x1 has \(3,\).*x2 has \(2,\)"):
        empirical_ntk(apply_fn, params, x, _inputs(4, 2, 0))
    with pytest.raises(ValueError, match="chunk_size"):
        empirical_ntk(apply_fn, params, x, chunk_size=True)
    with pytest.raises(ValueError, match="implementation"):
        empirical_ntk(apply_fn, params, x, implementation=7)
    with pytest.raises(ValueError, match="x1 must be a non-empty batch"):
        empirical_ntk(apply_fn, params, x[:0])
    with pytest.raises(ValueError, match="one scalar per input"):
        empirical_ntk(lambda p, x: jnp.ones((x.shape[0], 2)) * p, jnp.ones(()), x)
    with pytest.raises(TypeError, match="nnx.Module"):
        from_nnx(object())


def test_non_finite_inputs_and_params_are_named():
    """NaN/Inf used to give a NaN kernel silently; concrete inputs now raise, naming the row."""
    apply_fn, params = from_nnx(MLP(3, 4, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64))
    x, impl = _inputs(4, 3, 0), NTKImplementation.NTK_VECTOR_PRODUCTS
    with pytest.raises(ValueError, match=r"x1 contains NaN or Inf in 1 of its 4 rows.*row 2"):
        empirical_ntk(apply_fn, params, x.at[2, 1].set(jnp.nan), implementation=impl)
    with pytest.raises(ValueError, match=r"x2 contains NaN or Inf .*row 0"):
        empirical_ntk(apply_fn, params, x, x.at[0, 0].set(jnp.inf), implementation=impl)
    leaves, treedef = jax.tree.flatten(params)
    leaves[0] = leaves[0].at[0].set(jnp.nan)
    with pytest.raises(ValueError, match="params contain NaN or Inf"):
        empirical_ntk(apply_fn, jax.tree.unflatten(treedef, leaves), x, implementation=impl)
    # Under tracing the values are unknown: no check, the NaN propagates as before.
    traced = jax.jit(lambda xx: empirical_ntk(apply_fn, params, xx, implementation=impl))
    assert bool(jnp.isnan(traced(x.at[2, 1].set(jnp.nan))).any())


def test_ntk_fn_takes_neural_tangents_order():
    """`ntk_fn(f)(x1, x2, params)`, as neural-tangents' `empirical_ntk_fn(f)(x1, x2, params)`."""
    apply_fn, params = from_nnx(ResidualMLP(3, 6, 1, rngs=nnx.Rngs(0), param_dtype=jnp.float64))
    x1, x2 = _inputs(5, 3, 1), _inputs(3, 3, 2)
    kernel = ntk_fn(apply_fn, implementation=NTKImplementation.STRUCTURED, chunk_size=2)
    for _ in range(2):  # the second call skips the architecture check and must agree
        assert _rel(kernel(x1, None, params), empirical_ntk(apply_fn, params, x1)) <= 1e-12
        assert _rel(kernel(x1, x2, params), empirical_ntk(apply_fn, params, x1, x2)) <= 1e-12
    with pytest.raises(ValueError, match="x2 contains NaN"):
        kernel(x1, x2.at[1, 0].set(jnp.nan), params)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_kernel_jvp_matches_central_differences(impl):
    """Forward-mode dK along a parameter direction; the central difference converges as h²."""
    apply_fn, params = from_nnx(MLP(3, 8, 2, rngs=nnx.Rngs(3), param_dtype=jnp.float64))
    x = _inputs(5, 3, 4)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(9), len(leaves))
    direction = jax.tree.unflatten(
        treedef, [jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)]
    )
    k, dk = kernel_jvp(apply_fn, params, direction, x, implementation=impl)
    assert _rel(k, empirical_ntk(apply_fn, params, x)) <= 1e-12

    def shifted(h):
        return empirical_ntk(apply_fn, jax.tree.map(lambda p, v: p + h * v, params, direction), x)

    errors = [
        float(jnp.linalg.norm((shifted(h) - shifted(-h)) / (2 * h) - dk) / jnp.linalg.norm(dk))
        for h in (2e-3, 1e-3)
    ]
    assert errors[1] < 1e-4
    assert 3.0 < errors[0] / errors[1] < 5.0  # second order


def test_flow_derivative_direction():
    """dθ/dt = -J^T e/(nα): dM/dt scales as 1/α and is linear in e."""
    apply_fn, params = from_nnx(MLP(3, 8, 1, rngs=nnx.Rngs(3), param_dtype=jnp.float64))
    x = _inputs(6, 3, 5)
    e = jnp.asarray(np.random.default_rng(0).normal(size=6))
    m1, dm1 = ntk_flow_derivative(apply_fn, params, x, e)
    m4, dm4 = ntk_flow_derivative(apply_fn, params, x, 2.0 * e, output_scale=4.0)
    assert _rel(m1, empirical_ntk(apply_fn, params, x) / 6) <= 1e-12
    assert _rel(dm4, 0.5 * dm1) <= 1e-12
