"""The structured eNTK of networks made of dense layers: layerwise Gram products.

For a dense layer $y = w\\,a W + b\\,\\beta$ the weight-and-bias block of $J J'^T$ is
$(A A'^T) \\circ (G G'^T)$, with $A$ the layer inputs (plus a constant column for the bias) and
$G = \\partial f/\\partial y$ the back-propagated gradients (Novak et al., "Fast finite width
neural tangent kernel", ICML 2022, "structured derivatives"). Memory n × width per layer; $J$ is
never formed. The network must expose `dense_factors(params, x)` (the adapters of `from_nnx`
provide it for `MLP`, `ResidualMLP` and `RandomFeatures`).
"""

from __future__ import annotations

import jax

from ._apply import num_params
from ._blocks import from_blocks, to_blocks

__all__ = ["check_structured", "structured"]


def check_structured(apply_fn, params, x) -> None:
    """`ValueError` unless `apply_fn` has dense factors that cover every parameter."""
    if not callable(getattr(apply_fn, "dense_factors", None)):
        raise ValueError(
            "NTKImplementation.STRUCTURED needs an apply_fn with a `dense_factors(params, x)` "
            f"method (networks of dense layers); got {type(apply_fn).__name__}. Build it with "
            "`from_nnx(model)` on a spectral_jax network (MLP, ResidualMLP, RandomFeatures), "
            "or use JACOBIAN_CONTRACTION / NTK_VECTOR_PRODUCTS."
        )
    shapes = jax.eval_shape(apply_fn.dense_factors, params, x[:1])
    covered = sum(a.shape[1] * g.shape[1] for a, g in shapes)
    total = num_params(params)
    if covered != total:
        raise ValueError(
            f"NTKImplementation.STRUCTURED: the dense-layer factors of {type(apply_fn).__name__} "
            f"cover {covered} parameters but params hold {total}: the architecture has "
            "parameters outside dense layers, which the structured kernel does not support"
        )


def _factors(apply_fn, params, x, chunk):
    """Per-layer factors (A_aug (n, d_in[+1]), G (n, d_out)), computed in input blocks."""
    if chunk is None:
        return apply_fn.dense_factors(params, x)
    n = x.shape[0]
    blocks = jax.lax.map(lambda xb: apply_fn.dense_factors(params, xb), to_blocks(x, chunk))
    return jax.tree.map(lambda b: from_blocks(b, n), blocks)


def structured(apply_fn, params, x1, x2, same: bool, chunk: int | None):
    """$\\sum_l (A_1 A_2^T) \\circ (G_1 G_2^T)$, one block row of K at a time when chunked."""
    f1 = _factors(apply_fn, params, x1, chunk)
    f2 = f1 if same else _factors(apply_fn, params, x2, chunk)

    def rows(a1g1):
        out = None
        for (a1, g1), (a2, g2) in zip(a1g1, f2, strict=True):
            term = (a1 @ a2.T) * (g1 @ g2.T)
            out = term if out is None else out + term
        return out

    if chunk is None:
        return rows(f1)
    blocks = jax.lax.map(rows, jax.tree.map(lambda a: to_blocks(a, chunk), f1))
    return from_blocks(blocks, x1.shape[0])
