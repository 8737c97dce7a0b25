"""Scalar-output flax nnx networks in NTK parameterisation (docs/theory.md §2.1).

Every dense layer computes $y = \\frac{\\sigma_w}{\\sqrt{d_\\text{in}}}\\, a W + \\sigma_b\\, b$
with $W_{ij}, b_j \\sim \\mathcal N(0, 1)$ (Jacot, Gabriel & Hongler, "Neural tangent kernel",
NeurIPS 2018), so the eNTK has a finite limit as the width grows. The networks map a batch
(n, d) to (n,) outputs. Use `spectral_jax.from_nnx(model)` to get `(apply_fn, params)`.

The output scale α (Chizat, Oyallon & Bach, "On lazy training in differentiable programming",
NeurIPS 2019) is applied by the training code, not by the module:
$f_\\alpha = \\alpha (f_\\theta - f_{\\theta_0})$ with loss $\\|f_\\alpha - y\\|^2/(2n\\alpha^2)$
(`TrainingConfig.output_scale`). The eNTK of the module itself is the $K$ of $M = K/n$.

All three networks expose `ntk_dense_factors(x)`, the per-layer factors that the `STRUCTURED`
eNTK uses (layer inputs, with a constant column for the bias, and the back-propagated gradients
at the layer outputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["DenseNTK", "MLP", "ResidualMLP", "RandomFeatures", "FrozenWeight"]


class FrozenWeight(nnx.Variable):
    """A non-trainable weight (held fixed by `from_nnx`: it is not an `nnx.Param`)."""


class DenseNTK(nnx.Module):
    """$y = \\frac{\\sigma_w}{\\sqrt{d_\\text{in}}} a W + \\sigma_b b$ (+ an optional tap δ).

    **Arguments:** `in_features`, `out_features`; `weight_std` σ_w; `bias_std` σ_b (0 means
    no bias parameter); `rngs`; `param_dtype` (default: JAX's default float).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        weight_std: float = 1.0,
        bias_std: float = 0.1,
        rngs: nnx.Rngs,
        param_dtype=None,
    ):
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"DenseNTK: in_features and out_features must be >= 1, got "
                f"{in_features}, {out_features}"
            )
        dtype = jnp.result_type(float) if param_dtype is None else param_dtype
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight_scale = float(weight_std) / math.sqrt(in_features)
        self.bias_scale = float(bias_std)
        shape = (in_features, out_features)
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), shape, dtype))
        self.bias = (
            nnx.Param(jax.random.normal(rngs.params(), (out_features,), dtype))
            if bias_std != 0.0
            else None
        )

    def __call__(self, a, delta=None):
        y = self.weight_scale * (a @ self.kernel[...])
        if self.bias is not None:
            y = y + self.bias_scale * self.bias[...][None, :]
        if delta is not None:
            y = y + delta
        return y

    def augmented_inputs(self, a):
        """$[\\sigma_w a/\\sqrt{d}, \\sigma_b]$: the layer's weight-and-bias Jacobian factor."""
        scaled = self.weight_scale * a
        if self.bias is None:
            return scaled
        ones = jnp.full((a.shape[0], 1), self.bias_scale, dtype=a.dtype)
        return jnp.concatenate([scaled, ones], axis=1)


class _DenseNetwork(nnx.Module):
    """Shared machinery: a forward pass with taps at every dense output, and the factors."""

    def dense_layers(self) -> list[DenseNTK]:
        raise NotImplementedError

    def tapped(self, x, deltas):
        """`(outputs (n,), [inputs of each dense layer])` with `deltas[l]` added to layer l."""
        raise NotImplementedError

    def __call__(self, x):
        out, _ = self.tapped(x, [None] * len(self.dense_layers()))
        return out

    def ntk_dense_factors(self, x):
        """Per dense layer `(A_aug (n, d_in[+1]), G (n, d_out))`, $G = \\partial f/\\partial y$.

        One backward pass over the whole batch gives every $G$: the outputs of different
        inputs do not interact, so the gradient of $\\sum_i f(x_i)$ w.r.t. the tap at row i
        is $\\partial f(x_i)/\\partial y(x_i)$.
        """
        layers = self.dense_layers()
        n = x.shape[0]
        deltas = [jnp.zeros((n, layer.out_features), x.dtype) for layer in layers]
        out, vjp, inputs = jax.vjp(lambda d: self.tapped(x, d), deltas, has_aux=True)
        (grads,) = vjp(jnp.ones_like(out))
        return [
            (layer.augmented_inputs(a), g)
            for layer, a, g in zip(layers, inputs, grads, strict=True)
        ]


def _check_x(x, in_features, name):
    if x.ndim != 2 or x.shape[1] != in_features:
        raise ValueError(f"{name}: expected inputs (n, {in_features}), got {x.shape}")


class MLP(_DenseNetwork):
    """Fully connected network with `depth` hidden layers of `width` units and a scalar readout.

    **Arguments:** `in_features`, `width`, `depth` (≥ 1 hidden layers), `activation`
    (default tanh: smooth, so $M(t)$ is smooth along training), `weight_std`, `bias_std`,
    `rngs`, `param_dtype`.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        *,
        activation: Callable = jnp.tanh,
        weight_std: float = 1.0,
        bias_std: float = 0.1,
        rngs: nnx.Rngs,
        param_dtype=None,
    ):
        if depth < 1:
            raise ValueError(f"MLP: depth must be >= 1, got {depth}")
        kw = dict(weight_std=weight_std, bias_std=bias_std, rngs=rngs, param_dtype=param_dtype)
        sizes = [in_features] + [width] * depth
        self.in_features = int(in_features)
        self.activation = activation
        self.hidden = nnx.List([DenseNTK(a, b, **kw) for a, b in zip(sizes[:-1], sizes[1:])])
        self.readout = DenseNTK(width, 1, **kw)

    def dense_layers(self):
        return [*self.hidden, self.readout]

    def tapped(self, x, deltas):
        _check_x(x, self.in_features, "MLP")
        inputs, h = [], x
        for layer, delta in zip(self.hidden, deltas[:-1], strict=True):
            inputs.append(h)
            h = self.activation(layer(h, delta))
        inputs.append(h)
        return self.readout(h, deltas[-1])[:, 0], inputs


class ResidualMLP(_DenseNetwork):
    """Residual network: $h_0 = $ embed(x), $h_{k+1} = h_k + \\frac{1}{\\sqrt{B}}
    W^{(2)}_k\\,\\phi(W^{(1)}_k h_k)$ for B blocks, scalar readout of $h_B$.

    The $1/\\sqrt{B}$ branch scale keeps the forward variance bounded in depth.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        num_blocks: int,
        *,
        activation: Callable = jnp.tanh,
        weight_std: float = 1.0,
        bias_std: float = 0.1,
        rngs: nnx.Rngs,
        param_dtype=None,
    ):
        if num_blocks < 1:
            raise ValueError(f"ResidualMLP: num_blocks must be >= 1, got {num_blocks}")
        kw = dict(weight_std=weight_std, bias_std=bias_std, rngs=rngs, param_dtype=param_dtype)
        self.in_features = int(in_features)
        self.activation = activation
        self.branch_scale = 1.0 / math.sqrt(num_blocks)
        self.embed = DenseNTK(in_features, width, **kw)
        self.first = nnx.List([DenseNTK(width, width, **kw) for _ in range(num_blocks)])
        self.second = nnx.List([DenseNTK(width, width, **kw) for _ in range(num_blocks)])
        self.readout = DenseNTK(width, 1, **kw)

    def dense_layers(self):
        blocks = [layer for pair in zip(self.first, self.second) for layer in pair]
        return [self.embed, *blocks, self.readout]

    def tapped(self, x, deltas):
        _check_x(x, self.in_features, "ResidualMLP")
        inputs = [x]
        h = self.embed(x, deltas[0])
        for k, (w1, w2) in enumerate(zip(self.first, self.second, strict=True)):
            inputs.append(h)
            u = self.activation(w1(h, deltas[1 + 2 * k]))
            inputs.append(u)
            h = h + self.branch_scale * w2(u, deltas[2 + 2 * k])
        inputs.append(h)
        return self.readout(h, deltas[-1])[:, 0], inputs


class RandomFeatures(_DenseNetwork):
    """Two-layer random-features model: frozen first layer, trained readout (exactly lazy).

    $f(x) = \\frac{1}{\\sqrt p} \\sum_j v_j\\, \\phi(w_j \\cdot x/\\sqrt d)$, $w_j \\sim
    \\mathcal N(0, I)$ frozen (`FrozenWeight`, not a `Param`), $v \\sim \\mathcal N(0, 1)$
    trained; its eNTK $\\Phi\\Phi^T/p$ does not depend on the trained parameters.
    """

    def __init__(
        self,
        in_features: int,
        num_features: int,
        *,
        activation: Callable = jnp.tanh,
        rngs: nnx.Rngs,
        param_dtype=None,
    ):
        dtype = jnp.result_type(float) if param_dtype is None else param_dtype
        self.in_features = int(in_features)
        self.activation = activation
        self.input_scale = 1.0 / math.sqrt(in_features)
        self.features = FrozenWeight(
            jax.random.normal(rngs.params(), (in_features, num_features), dtype)
        )
        self.readout = DenseNTK(
            num_features, 1, bias_std=0.0, rngs=rngs, param_dtype=param_dtype
        )

    def feature_map(self, x):
        """$\\phi(x W/\\sqrt d)$, shape (n, p)."""
        _check_x(x, self.in_features, "RandomFeatures")
        return self.activation(self.input_scale * (x @ self.features[...]))

    def dense_layers(self):
        return [self.readout]

    def tapped(self, x, deltas):
        phi = self.feature_map(x)
        return self.readout(phi, deltas[0])[:, 0], [phi]
