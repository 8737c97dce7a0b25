"""The jaxpr-structured eNTK (`NTKImplementation.JAXPR_STRUCTURED`, the `AUTO` default for
networks without dense factors) against the Jacobian contraction, on flax and plain-JAX models."""

import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from spectral_jax.networks import (
    MLP,
    NTKImplementation,
    empirical_ntk,
    from_linen,
    from_nnx,
    ntk_fn,
)
from spectral_jax.networks.ntk import _resolve
from spectral_jax.networks.ntk_jaxpr import LeafKind, jaxpr_ntk_report

JAXPR, REFERENCE = NTKImplementation.JAXPR_STRUCTURED, NTKImplementation.JACOBIAN_CONTRACTION
F64 = dict(param_dtype=jnp.float64)
GRAM = {LeafKind.DENSE, LeafKind.DENSE_BIAS}


def _normal(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float64)


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _plain_mlp():
    def f(p, x):
        h = x
        for w, b in p["hidden"]:
            h = jax.nn.relu(jnp.dot(h, w) + b[None, :])
        return jnp.dot(h, p["readout"])[:, 0]

    sizes = [3, 8, 8]
    hidden = [(_normal(i, (a, b), a**-0.5), _normal(10 + i, (b,), 0.1))
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return f, {"hidden": hidden, "readout": _normal(20, (8, 1), 8**-0.5)}, (3,)


class _LinearMLP(nnx.Module):
    def __init__(self, rngs):
        self.layers = nnx.List([nnx.Linear(3, 8, rngs=rngs, **F64),
                                nnx.Linear(8, 8, rngs=rngs, **F64)])
        self.head = nnx.Linear(8, 1, rngs=rngs, **F64)

    def __call__(self, x):
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return self.head(x)[:, 0]


class _Residual(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Linear(3, 6, rngs=rngs, **F64)
        self.up = nnx.Linear(6, 6, rngs=rngs, **F64)
        self.down = nnx.Linear(6, 6, rngs=rngs, **F64)
        self.head = nnx.Linear(6, 1, rngs=rngs, **F64)

    def __call__(self, x):
        h = self.embed(x)
        h = h + self.down(jax.nn.relu(self.up(h)))
        return self.head(h)[:, 0]


class _CNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(2, 3, (3, 3), rngs=rngs, **F64)
        self.head = nnx.Linear(5 * 5 * 3, 1, rngs=rngs, **F64)

    def __call__(self, x):
        h = jax.nn.relu(self.conv(x))
        return self.head(h.reshape(x.shape[0], -1))[:, 0]


class _LayerNormNet(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(3, 6, rngs=rngs, **F64)
        self.norm = nnx.LayerNorm(6, rngs=rngs, **F64)
        self.head = nnx.Linear(6, 1, rngs=rngs, **F64)

    def __call__(self, x):
        return self.head(jnp.tanh(self.norm(self.dense(x))))[:, 0]


class _Tokens(nnx.Module):
    """A dense layer applied to each of 2 tokens: R = 2 rows per example, Gram form kept."""

    def __init__(self, rngs):
        self.mix = nnx.Linear(16, 16, use_bias=False, rngs=rngs, **F64)
        self.head = nnx.Linear(16, 1, rngs=rngs, **F64)

    def __call__(self, x):
        return self.head(jnp.tanh(self.mix(x)).mean(axis=1))[:, 0]


class _LinenNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(7, param_dtype=jnp.float64)(x))
        return nn.Dense(1, param_dtype=jnp.float64)(h)[:, 0]


def _shared_weights():
    """W used twice and a leaf through `exp`: both fall back, the rest stays structured."""

    def f(p, x):
        h = jnp.tanh(x @ p["w"] + p["b"][None, :])
        h = jnp.tanh(h @ p["w"].T) * jnp.exp(p["log_gain"])[None, :]
        return (h @ p["v"])[:, 0]

    params = {"w": _normal(0, (4, 4), 0.5), "b": _normal(1, (4,), 0.1),
              "log_gain": _normal(2, (4,), 0.1), "v": _normal(3, (4, 1), 0.5)}
    return f, params, (4,)


def _linen():
    module = _LinenNet()
    variables = module.init(jax.random.key(0), jnp.zeros((1, 3), jnp.float64))
    return (*from_linen(module, variables), (3,))


def _nnx(cls, feature_shape):
    return lambda: (*from_nnx(cls(nnx.Rngs(0))), feature_shape)


# name -> (builder, the kinds each leaf must get); flax's normalisation promotes to float32
# internally, which strict promotion refuses: standard promotion for that model.
STANDARD = {"layernorm"}
MODELS = {
    "plain_mlp": (_plain_mlp, GRAM),
    "nnx_linear_mlp": (_nnx(_LinearMLP, (3,)), GRAM),
    "residual": (_nnx(_Residual, (3,)), GRAM),
    "cnn": (_nnx(_CNN, (5, 5, 2)), GRAM | {LeafKind.PER_EXAMPLE}),
    "layernorm": (_nnx(_LayerNormNet, (3,)), GRAM | {LeafKind.PER_EXAMPLE}),
    "tokens": (_nnx(_Tokens, (2, 16)), GRAM),
    "linen": (_linen, GRAM),
    "shared_weights": (_shared_weights, GRAM | {LeafKind.PER_EXAMPLE, LeafKind.FALLBACK}),
}


# Chunked blocks are checked on two models in CI and on every model in `make test-all`
# (each chunk size is two more compilations per model).
CHUNKED_IN_CI = ("plain_mlp", "cnn")


@pytest.mark.parametrize("name", list(MODELS))
def test_jaxpr_structured_matches_jacobian_contraction(name):
    chunks = (None, 4) if name in CHUNKED_IN_CI else (None,)
    with jax.numpy_dtype_promotion("standard" if name in STANDARD else "strict"):
        _check_against_reference(name, chunks)


@pytest.mark.slow
@pytest.mark.parametrize("name", [m for m in MODELS if m not in CHUNKED_IN_CI])
def test_jaxpr_structured_chunked_matches_jacobian_contraction(name):
    with jax.numpy_dtype_promotion("standard" if name in STANDARD else "strict"):
        _check_against_reference(name, (4,))


def _check_against_reference(name, chunks):
    build, allowed = MODELS[name]
    apply_fn, params, feature_shape = build()
    x1 = _normal(100, (9, *feature_shape))
    x2 = _normal(101, (5, *feature_shape))
    kinds = {r.kind for r in jaxpr_ntk_report(apply_fn, params, x1)}
    assert kinds <= allowed, kinds
    ref, ref_cross = empirical_ntk(apply_fn, params, x1, implementation=REFERENCE), None
    ref_cross = empirical_ntk(apply_fn, params, x1, x2, implementation=REFERENCE)
    for chunk in chunks:  # 4 divides neither 9 nor 5: padded blocks are exercised
        k = empirical_ntk(apply_fn, params, x1, implementation=JAXPR, chunk_size=chunk)
        assert k.dtype == jnp.float64 and _rel(k, ref) <= 1e-10, chunk
        kc = empirical_ntk(apply_fn, params, x1, x2, implementation=JAXPR, chunk_size=chunk)
        assert kc.shape == (9, 5) and _rel(kc, ref_cross) <= 1e-10, chunk
    # AUTO (the default) takes this path for every model here: none has dense factors.
    assert _rel(empirical_ntk(apply_fn, params, x1, x2), ref_cross) <= 1e-10


def test_plain_mlp_is_fully_structured_and_jit_compatible():
    apply_fn, params, _ = _plain_mlp()
    x = _normal(7, (8, 3))
    report = jaxpr_ntk_report(apply_fn, params, x)
    assert len(report) == 5 and all(r.kind.structured for r in report)
    assert [r.kind for r in report] == [LeafKind.DENSE, LeafKind.DENSE_BIAS] * 2 + [
        LeafKind.DENSE
    ]
    assert {r.primitive for r in report} == {"dot_general", "add"}
    eager = empirical_ntk(apply_fn, params, x)
    jitted = jax.jit(lambda p, xx: empirical_ntk(apply_fn, p, xx))(params, x)
    assert _rel(jitted, eager) <= 1e-14
    assert _rel(eager, empirical_ntk(apply_fn, params, x, implementation=REFERENCE)) <= 1e-10


def test_fallback_leaves_are_reported():
    apply_fn, params, _ = _shared_weights()
    report = {r.path: r for r in jaxpr_ntk_report(apply_fn, params, _normal(0, (3, 4)))}
    assert report["['w']"].kind is LeafKind.FALLBACK  # weight sharing
    assert report["['log_gain']"].kind is LeafKind.FALLBACK  # used through exp
    assert report["['v']"].kind is LeafKind.DENSE
    assert report["['b']"].kind is LeafKind.PER_EXAMPLE  # its layer's weight fell back
    assert not report["['w']"].kind.structured and report["['b']"].kind.structured


def test_unused_leaf_contributes_nothing():
    apply_fn, params, _ = _plain_mlp()
    params = {**params, "unused": jnp.ones((3,), jnp.float64)}
    x = _normal(5, (6, 3))
    kinds = [r.kind for r in jaxpr_ntk_report(apply_fn, params, x)]
    assert kinds.count(LeafKind.UNUSED) == 1
    k = empirical_ntk(apply_fn, params, x, implementation=JAXPR)
    assert _rel(k, empirical_ntk(apply_fn, params, x, implementation=REFERENCE)) <= 1e-10


def test_auto_is_the_default_and_picks_dense_factors_first():
    for fn in (empirical_ntk, ntk_fn):
        default = inspect.signature(fn).parameters["implementation"].default
        assert default is NTKImplementation.AUTO
    x = _normal(3, (4, 3))
    apply_fn, params = from_nnx(MLP(3, 4, 1, rngs=nnx.Rngs(0), **F64))
    auto = NTKImplementation.AUTO
    assert _resolve(apply_fn, params, x, auto) is NTKImplementation.STRUCTURED
    plain, plain_params, _ = _plain_mlp()
    assert _resolve(plain, plain_params, x, auto) is JAXPR
    kernel = ntk_fn(plain)
    assert _rel(kernel(x, None, plain_params), empirical_ntk(plain, plain_params, x)) <= 1e-14
