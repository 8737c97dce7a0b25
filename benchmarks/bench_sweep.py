"""64 configurations of the lazy scaling sweep: one vmapped, sharded call against a Python loop.

    python benchmarks/bench_sweep.py [--devices N] [--out benchmarks/sweep.md]

Both sides run the same `lazy_scaling.compute` (the shell ODE, Kvaerno5, from the continuum
power-law initial condition) on the same 64 configurations (8 spectral × 8 target
exponents, lazy), in one process, side by side:

- **sweep**: `run_sweep` (one batch of 64 under `jit(vmap)`, sharded over the local devices);
- **loop**: one `jit` of the single-configuration function, called 64 times from Python.

Compilation is timed apart from running, and compilations are counted by tracing: a counter
in the traced function, which JAX calls once per compilation of a shape. `--devices N` forces
N host devices (XLA_FLAGS, set before JAX starts) so that the sharded call can split the
batch over CPU cores. The outputs of both sides are compared.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--out", type=pathlib.Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.devices > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.devices}")
    import jax
    import numpy as np

    jax.config.update("jax_enable_x64", True)
    from spectral_jax.experiments import lazy_scaling
    from spectral_jax.sweep import ResultStore, Sweep, parse_sweep_config, run_sweep

    traces = {"sweep": 0, "loop": 0}

    def counted(side):
        def compute(params):
            traces[side] += 1  # Python runs this once per trace, i.e. per compilation
            return lazy_scaling.compute(params)
        return compute

    sweep = Sweep(name="lazy_scaling", parameters=lazy_scaling.Parameters,
                  compute=counted("sweep"), batched=lazy_scaling.SWEEP.batched)
    exponents = [1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0]
    config = parse_sweep_config({
        "sweep": "lazy_scaling", "fixed": {"t_max": 1e4, "num_times": 41},
        "grid": {"spectral_exponent": exponents,
                 "target_exponent": [e + 0.5 for e in exponents]},
    })
    configs = config.configurations(sweep)
    assert len(configs) == 64

    # Sweep: the first run compiles; later runs (fresh stores) reuse nothing from the engine,
    # so its compile time is measured on each, and its run time is the engine's own timing.
    sweep_runs, outcome = [], None
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            outcome = run_sweep(sweep, configs, ResultStore(folder), progress=False)
            total = time.perf_counter() - start
            sweep_runs.append((outcome.compile_seconds, outcome.run_seconds, total))
            sweep_outputs = {r.config_id: r.outputs["loss"] for r in outcome.records}
            ids = [r.config_id for r in outcome.records]
    sweep_traces = traces["sweep"]

    import dataclasses

    import jax.numpy as jnp

    first = dataclasses.asdict(configs[0])
    static = {f: first[f] for f in sweep.static}

    def single(batched):
        return counted("loop")({**static, **batched})

    loop_fn = jax.jit(single)
    inputs = [{f: jnp.asarray(getattr(c, f)) for f in sweep.batched} for c in configs]
    start = time.perf_counter()
    compiled = loop_fn.lower(inputs[0]).compile()
    loop_compile = time.perf_counter() - start
    loop_runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        outputs = [jax.block_until_ready(compiled(x)) for x in inputs]
        loop_runs.append(time.perf_counter() - start)
    loop_loss = [np.asarray(o["loss"]) for o in outputs]
    diff = max(float(np.max(np.abs(sweep_outputs[i] - lo) / np.abs(lo)))
               for i, lo in zip(ids, loop_loss))

    sweep_run = min(r[1] for r in sweep_runs)
    loop_run = min(loop_runs)
    lines = [
        "# Sweep engine: 64 lazy-scaling configurations, vmapped and sharded vs a Python loop",
        "",
        f"Command: `python benchmarks/bench_sweep.py --devices {args.devices}` "
        f"({time.strftime('%Y-%m-%d')}, {jax.devices()[0].device_kind}, "
        f"{jax.local_device_count()} local device(s), JAX {jax.__version__}, "
        f"best of {args.repeats}).",
        "",
        "| | compile (s) | run, 64 configurations (s) | compilations (traces) |",
        "|---|---|---|---|",
        f"| sweep: one `jit(vmap)` batch, sharded | {sweep_runs[0][0]:.2f} | {sweep_run:.3f} | "
        f"{outcome.compilations} per run ({sweep_traces} traces in {args.repeats} runs) |",
        f"| loop: one `jit`, 64 calls | {loop_compile:.2f} | {loop_run:.3f} | "
        f"1 ({traces['loop']} trace) |",
        "",
        f"Speed-up of the run: **{loop_run / sweep_run:.1f}×**. Largest relative difference "
        f"of the loss curves between the two: {diff:.1e}. Sweep wall time including "
        f"compilation and writing 64 records: {min(r[2] for r in sweep_runs):.2f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
