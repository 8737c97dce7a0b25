"""Flax adapters: a module as a pure `(apply_fn, params)` pair for the eNTK and training.

Only trainable parameters are differentiated; every other collection (batch statistics, frozen
random features, RNG counters, ...) is captured in `apply_fn` and held fixed.
"""

from __future__ import annotations

from typing import Any

from ._apply import scalar_outputs

__all__ = ["NNXApply", "LinenApply", "from_nnx", "from_linen"]


class NNXApply:
    """`apply_fn(params, x)` for a flax nnx module split into (graphdef, Params, rest).

    The `rest` state (batch statistics, frozen weights, RNG counters, ...) is held fixed; any
    update the module makes to it during a call is discarded, so run stateful layers in
    evaluation mode (e.g. `BatchNorm(use_running_average=True)`).
    """

    def __init__(self, graphdef, rest, module_type: type | None = None):
        self.graphdef = graphdef
        self.rest = rest
        self.module_type = module_type

    def module(self, params):
        from flax import nnx

        return nnx.merge(self.graphdef, params, self.rest, copy=True)

    def __call__(self, params, x):
        return scalar_outputs(self.module(params)(x), x.shape[0], "NNXApply")

    def __getattr__(self, name):
        # `dense_factors` exists only for modules that provide `ntk_dense_factors`, so that
        # `STRUCTURED` fails with a clear message on anything else.
        if name == "dense_factors":
            cls = self.__dict__.get("module_type")
            if cls is not None and hasattr(cls, "ntk_dense_factors"):
                return lambda params, x: self.module(params).ntk_dense_factors(x)
        raise AttributeError(name)


def from_nnx(module) -> tuple[NNXApply, Any]:
    """Split an nnx module into `(apply_fn, params)` for `empirical_ntk` and training.

    `params` is the `nnx.State` of the module's `nnx.Param` variables (a pytree); everything
    else (`nnx.BatchStat`, non-Param variables such as frozen random features) is captured in
    `apply_fn` and held fixed. `apply_fn(params, x)` merges a fresh copy, so it is pure and can
    be traced, differentiated and vmapped. Rebuild a module with `apply_fn.module(params)`.

    **Raises:** `TypeError` if `module` is not a `flax.nnx.Module`.
    """
    from flax import nnx

    if not isinstance(module, nnx.Module):
        raise TypeError(f"from_nnx expects a flax.nnx.Module, got {type(module).__name__}")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    return NNXApply(graphdef, rest, type(module)), params


class LinenApply:
    """`apply_fn(params, x)` for a linen module; non-`params` collections held fixed."""

    def __init__(self, module, rest: dict, method=None):
        self.linen_module = module
        self.rest = rest
        self.method = method

    def __call__(self, params, x):
        out = self.linen_module.apply({"params": params, **self.rest}, x, method=self.method)
        return scalar_outputs(out, x.shape[0], "LinenApply")


def from_linen(module, variables, *, method=None) -> tuple[LinenApply, Any]:
    """`(apply_fn, params)` for a linen module and its variables.

    The `params` collection is differentiated; every other collection (`batch_stats`, ...)
    is held fixed (the module is applied without `mutable`, so layers must be in evaluation
    mode, e.g. `BatchNorm(use_running_average=True)`).

    **Raises:** `ValueError` if `variables` has no `params` collection.
    """
    variables = dict(variables)
    if "params" not in variables:
        raise ValueError(
            f"from_linen: variables need a 'params' collection; got {sorted(variables)}"
        )
    params = variables.pop("params")
    return LinenApply(module, variables, method), params
