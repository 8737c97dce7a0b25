"""neural-tangents' analytic NNGP/NTK of MLPs, saved for `bench_infinite_width.py --nt-reference`.

Run with a throw-away environment outside the repository (neural-tangents is not a dependency
of spectral_jax, not even of its tests):

    python3.11 -m venv /tmp/nt-venv
    /tmp/nt-venv/bin/pip install "jax[cpu]==0.4.25" "jaxlib==0.4.25" neural-tangents==0.6.5 \\
        "numpy<2" "scipy<1.13"
    /tmp/nt-venv/bin/python benchmarks/nt_reference_infinite_width.py [--out /tmp/nt_iw.npz]

For each activation (relu: `stax.Relu()`, erf: `stax.Erf()`, and tanh through
`stax.ElementwiseNumerical(jnp.tanh, deg)`, NT's own Gauss–Hermite rule), depth 1–4 and a few
(W_std, b_std), the network is

    stax.serial(Dense(512, W_std, b_std), φ, ..., φ, Dense(1, W_std, b_std))

(`depth` Dense layers, parameterization='ntk', the default) and `kernel_fn(x1, x2, ('nngp',
'ntk'))` is saved for x2 = None and for a second input set, in float64 (x64 is enabled before
NT is imported). Inputs: `np.random.default_rng(0)`, x1 (12, 6) and x2 (7, 6) standard normal.
"""

from __future__ import annotations

import argparse
import json

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import neural_tangents as nt  # noqa: E402
import numpy as np  # noqa: E402
from neural_tangents import stax  # noqa: E402

ACTIVATIONS = {"relu": stax.Relu, "erf": stax.Erf}
STDS = [(1.0, 0.0), (1.5, 0.1), (np.sqrt(2.0), 0.5)]
DEPTHS = [1, 2, 3, 4]
TANH_DEG = 200  # NT's ElementwiseNumerical quadrature degree for the tanh cases


def inputs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, 6)), rng.standard_normal((7, 6))


def network(activation: str, depth: int, w_std: float, b_std: float):
    if activation == "tanh":
        layer = lambda: stax.ElementwiseNumerical(jnp.tanh, deg=TANH_DEG)  # noqa: E731
    else:
        layer = ACTIVATIONS[activation]
    dense = lambda width: stax.Dense(width, W_std=w_std, b_std=b_std)  # noqa: E731
    layers = []
    for _ in range(depth - 1):
        layers += [dense(512), layer()]
    return stax.serial(*layers, dense(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/nt_infinite_width.npz")
    args = parser.parse_args()
    x1, x2 = inputs()
    cases = [(a, d, w, b) for a in ACTIVATIONS for d in DEPTHS for w, b in STDS]
    cases += [("tanh", d, 1.5, 0.1) for d in (2, 3)]
    arrays = {"x1": x1, "x2": x2}
    meta = []
    for activation, depth, w_std, b_std in cases:
        _, _, kernel_fn = network(activation, depth, w_std, b_std)
        key = f"{activation}_d{depth}_w{w_std:.6f}_b{b_std:.6f}"
        for tag, second in (("same", None), ("cross", x2)):
            k = kernel_fn(x1, second, ("nngp", "ntk"))
            arrays[f"{key}_{tag}_nngp"] = np.asarray(k.nngp)
            arrays[f"{key}_{tag}_ntk"] = np.asarray(k.ntk)
        meta.append(dict(key=key, activation=activation, depth=depth, w_std=float(w_std),
                         b_std=float(b_std)))
    # Small cross kernels for tests/test_infinite_width.py (values written into the test).
    rng = np.random.default_rng(1)
    small1, small2 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for activation, depth, w_std, b_std in [("relu", 3, 1.5, 0.1), ("erf", 3, 1.5, 0.1),
                                            ("relu", 4, 1.0, 0.0), ("erf", 2, 1.0, 0.5)]:
        k = network(activation, depth, w_std, b_std)[2](small1, small2, "ntk")
        print(f"    ({activation!r}, {depth}, {w_std}, {b_std}): "
              f"{np.array2string(np.asarray(k), precision=17, separator=', ')},")
    arrays["meta"] = np.asarray(json.dumps(meta))
    arrays["versions"] = np.asarray(json.dumps(
        dict(jax=jax.__version__, neural_tangents=nt.__version__, numpy=np.__version__,
             x64=bool(jax.config.jax_enable_x64), tanh_deg=TANH_DEG)))
    np.savez(args.out, **arrays)
    print(f"{len(cases)} cases ({2 * len(cases)} input pairs) -> {args.out}; dtype "
          f"{arrays[meta[0]['key'] + '_same_ntk'].dtype}")


if __name__ == "__main__":
    main()
