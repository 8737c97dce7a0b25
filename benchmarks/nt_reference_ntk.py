"""neural-tangents reference timings and kernel for `benchmarks/bench_ntk_jaxpr.py` (not a test).

Runs in a separate environment with neural-tangents (it pins an old JAX), e.g.
`python3.11 -m venv /tmp/nt-venv && /tmp/nt-venv/bin/pip install "jax[cpu]==0.4.25"
"jaxlib==0.4.25" neural-tangents==0.6.5 "numpy<2" "scipy<1.13"`.

The anchor network (3 hidden ReLU layers, scalar readout, float32) is written as a plain
function with the parameters and inputs of the `.npz` that `bench_ntk_jaxpr.py --anchor`
writes; its eNTK comes from `nt.empirical_ntk_fn(f, trace_axes=(), vmap_axes=0,
implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES)` (`vmap_axes=0`: the rows of a
batch are independent, the assumption our per-example jaxpr path makes too; without it
neural-tangents is ~250x slower here). For each N: the first call (compile + run) and the
median of `--repeats` timed calls; the kernel at `--kernel-n` is saved for the comparison.

Usage:
    /tmp/nt-venv/bin/python benchmarks/nt_reference_ntk.py --anchor /tmp/ntk_jaxpr_anchor.npz \\
        --out /tmp/ntk_jaxpr_nt_reference.npz
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import neural_tangents as nt
import numpy as np


def anchor_fn(params, x):
    """The anchor MLP, (n, d) -> (n, 1); `params` a list of (W, b)."""
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", required=True, help=".npz from bench_ntk_jaxpr.py")
    parser.add_argument("--out", required=True, help="where to save timings and the kernel")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kernel-n", type=int, default=1024)
    args = parser.parse_args()

    data = np.load(args.anchor)
    layers = sum(1 for key in data.files if key.startswith("w"))
    params = [(jax.numpy.asarray(data[f"w{i}"]), jax.numpy.asarray(data[f"b{i}"]))
              for i in range(layers)]
    x_all = jax.numpy.asarray(data["x"])
    kernel_fn = jax.jit(nt.empirical_ntk_fn(
        anchor_fn, trace_axes=(), vmap_axes=0,
        implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES,
    ))
    first, median, kernel = [], [], None
    for n in args.sizes:
        x = x_all[:n]
        start = time.perf_counter()
        k = jax.block_until_ready(kernel_fn(x, None, params))
        first.append(time.perf_counter() - start)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            k = jax.block_until_ready(kernel_fn(x, None, params))
            times.append(time.perf_counter() - start)
        median.append(statistics.median(times))
        if n == args.kernel_n:
            kernel = np.asarray(k).reshape(n, n)
        print(f"N={n}: first call {first[-1]:.3f} s, median {median[-1]:.4f} s", flush=True)
    if kernel is None:  # --kernel-n not among --sizes
        kernel = np.asarray(kernel_fn(x_all[:args.kernel_n], None, params))
        kernel = kernel.reshape(args.kernel_n, args.kernel_n)
    np.savez(
        args.out, n=np.asarray(args.sizes), first_s=np.asarray(first),
        median_s=np.asarray(median), repeats=args.repeats, kernel=kernel,
        kernel_n=args.kernel_n, jax_version=jax.__version__, nt_version=nt.__version__,
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
