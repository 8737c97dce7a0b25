"""Benchmark of the eNTK implementations (not a test).

1. Time: eNTK $K(X, X)$ of a ReLU MLP (default: 3 hidden layers, width 512, input dimension 16)
   on N = 1024 points in float32, for each implementation; the median of `--repeats` timed
   calls after one warm-up (compile) call.
2. Peak memory: the structured, chunked eNTK at N = 4096, width 1024, measured as the peak
   resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) of a fresh child process,
   next to the peak RSS of an idle child that imports JAX and builds the same model, so that
   the kernel's own footprint is visible. Must stay under 2 GB.

Usage:
    python scripts/bench_ntk.py                      # the full table (minutes on 2 CPU cores)
    python scripts/bench_ntk.py --n 256 --repeats 2  # quick
    python scripts/bench_ntk.py --out benchmarks/NTK.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

IMPLEMENTATIONS = ("JACOBIAN_CONTRACTION", "NTK_VECTOR_PRODUCTS", "STRUCTURED")


def _build(width, depth, dim, n, seed=0):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from spectral_jax.networks.models import MLP
    from spectral_jax.networks.ntk import from_nnx, num_params

    model = MLP(
        dim, width, depth, activation=jax.nn.relu, rngs=nnx.Rngs(seed), param_dtype=jnp.float32
    )
    apply_fn, params = from_nnx(model)
    x = jax.random.normal(jax.random.key(seed + 1), (n, dim), jnp.float32)
    return apply_fn, params, x, num_params(params)


def time_implementations(args) -> list[dict]:
    import jax

    from spectral_jax.networks.ntk import NTKImplementation, ntk_fn

    apply_fn, params, x, p = _build(args.width, args.depth, args.dim, args.n)
    rows = []
    reference = None
    for name in args.implementations:
        impl = NTKImplementation[name]
        chunk = args.chunk if impl != NTKImplementation.STRUCTURED else args.structured_chunk
        kernel = ntk_fn(apply_fn, implementation=impl, chunk_size=chunk or None)
        start = time.perf_counter()
        k = jax.block_until_ready(kernel(params, x))
        first = time.perf_counter() - start
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            jax.block_until_ready(kernel(params, x))
            times.append(time.perf_counter() - start)
        if reference is None:
            reference = k
        rel = float(abs(k - reference).max() / abs(reference).max())
        rows.append(
            {
                "implementation": name,
                "chunk_size": chunk or None,
                "n": args.n,
                "params": p,
                "first_call_s": first,
                "median_s": statistics.median(times),
                "repeats": args.repeats,
                "max_rel_diff_vs_first_row": rel,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _child(args) -> None:
    """Run inside a fresh process: build the model, optionally compute the kernel, report RSS."""
    import resource

    import jax

    from spectral_jax.networks.ntk import NTKImplementation, empirical_ntk

    apply_fn, params, x, p = _build(args.mem_width, args.depth, args.dim, args.mem_n)
    jax.block_until_ready((x, params))
    seconds = None
    before = _proc_status_mb()
    # Reset the peak (VmHWM) so that what follows is measured on its own (Linux ≥ 4.0).
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        reset = True
    except OSError:
        reset = False
    if args.child == "kernel":
        start = time.perf_counter()
        k = empirical_ntk(
            apply_fn, params, x, implementation=NTKImplementation.STRUCTURED,
            chunk_size=args.mem_chunk,
        )
        k = jax.block_until_ready(k)
        seconds = time.perf_counter() - start
        assert k.shape == (args.mem_n, args.mem_n)
    after = _proc_status_mb()
    if "VmHWM" in before:
        # VmHWM belongs to this process's own address space; ru_maxrss can carry over the
        # parent's peak across fork/exec on Linux, so it is only the fallback.
        peak = max(before["VmHWM"], after["VmHWM"])
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(
        json.dumps(
            {
                "peak_rss_mb": peak,
                "build_peak_mb": before.get("VmHWM"),
                "rss_before_mb": before.get("VmRSS"),
                "peak_since_reset_mb": after.get("VmHWM") if reset else None,
                "params": p,
                "seconds": seconds,
            }
        )
    )


def _proc_status_mb() -> dict:
    """VmRSS / VmHWM of this process in MB (empty off Linux)."""
    out = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def measure_memory(args) -> dict:
    out = {}
    for mode in ("idle", "kernel"):
        cmd = [
            sys.executable, __file__, "--child", mode, "--mem-n", str(args.mem_n),
            "--mem-width", str(args.mem_width), "--mem-chunk", str(args.mem_chunk),
            "--depth", str(args.depth), "--dim", str(args.dim),
        ]
        env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"memory [{mode}]: {out[mode]}", flush=True)
    p = out["kernel"]["params"]
    out["jacobian_gb_float32"] = args.mem_n * p * 4 / 1e9
    out["kernel_matrix_mb_float32"] = args.mem_n**2 * 4 / 2**20
    return out


def markdown(args, rows, memory) -> str:
    import jax

    lines = [
        "# eNTK benchmark",
        "",
        f"Command: `python scripts/bench_ntk.py {' '.join(sys.argv[1:])}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores visible (shared with other "
        f"jobs), {jax.devices()[0].platform.upper()}, jax {jax.__version__}; float32.",
        "",
    ]
    if rows:
        lines += [
            f"## Time: ReLU MLP, {args.depth} hidden layers of width {args.width}, input dim "
            f"{args.dim}, N = {args.n}, P = {rows[0]['params']:,} parameters",
            "",
            "Median of the timed calls after one warm-up call (which includes compilation).",
            "",
            "| implementation | chunk | first call (s) | median (s) | repeats | "
            "max rel. diff vs first row |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['implementation']} | {r['chunk_size']} | {r['first_call_s']:.2f} | "
                f"{r['median_s']:.4g} | {r['repeats']} | {r['max_rel_diff_vs_first_row']:.1e} |"
            )
        lines.append("")
    if memory:
        k, idle = memory["kernel"], memory["idle"]
        lines += [
            f"## Peak memory: STRUCTURED, chunk {args.mem_chunk}, N = {args.mem_n}, width "
            f"{args.mem_width}, P = {k['params']:,}",
            "",
            "Fresh child processes. *Peak RSS* is the whole process's peak resident set "
            "(VmHWM, model building included); *RSS before* is VmRSS once the model and inputs "
            "exist; "
            "*peak during* is VmHWM after resetting it (`/proc/self/clear_refs`) just before "
            "the kernel call, i.e. the peak while computing K (compile included).",
            "",
            "| process | peak RSS (MB) | RSS before (MB) | peak during (MB) | time (s) |",
            "|---|---|---|---|---|",
            f"| idle: import JAX, build model and inputs | {idle['peak_rss_mb']:.0f} | "
            f"{_fmt(idle['rss_before_mb'])} | {_fmt(idle['peak_since_reset_mb'])} | - |",
            f"| structured eNTK K (N×N), incl. compile | {k['peak_rss_mb']:.0f} | "
            f"{_fmt(k['rss_before_mb'])} | {_fmt(k['peak_since_reset_mb'])} | "
            f"{k['seconds']:.1f} |",
            "",
            f"The N×N float32 result is {memory['kernel_matrix_mb_float32']:.0f} MB; the full "
            f"Jacobian would be {memory['jacobian_gb_float32']:.1f} GB. Whole-process peak "
            f"under 2 GB: {'yes' if k['peak_rss_mb'] < 2048 else 'NO'}.",
            "",
        ]
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--chunk", type=int, default=128,
        help="input block for the Jacobian/VJP methods (0: unchunked; J would be N × P)",
    )
    parser.add_argument("--structured-chunk", type=int, default=0)
    parser.add_argument("--implementations", nargs="*", default=list(IMPLEMENTATIONS))
    parser.add_argument("--mem-n", type=int, default=4096)
    parser.add_argument("--mem-width", type=int, default=1024)
    parser.add_argument("--mem-chunk", type=int, default=512)
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--child", choices=["idle", "kernel"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return
    rows = [] if args.skip_time else time_implementations(args)
    memory = None if args.skip_memory else measure_memory(args)
    text = markdown(args, rows, memory)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
