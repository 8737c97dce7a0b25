"""Benchmark of the default eNTK on networks without dense factors (not a test).

The anchor network (3 hidden ReLU layers of width 512, input dimension 16, scalar readout,
float32) written two ways, a plain JAX function and an `nnx.Linear` MLP through `from_nnx`,
both through the public default `spectral_jax.empirical_ntk` (`AUTO`, which takes the
jaxpr-structured path for them):

1. Time at N = 256, 1024, 2048: the first call (compile + run) and the median of `--repeats`
   timed calls; next to it, in the same run, `JACOBIAN_CONTRACTION` (what the default was
   before) at N = 256.
2. Peak memory at N = 4096, width 1024: one fresh child process per model form, reading
   VmHWM/VmPeak from /proc/self/status (VmHWM reset through /proc/self/clear_refs just before
   the kernel, so "peak during" is the kernel's own peak resident set). Target < 2 GB.
3. Against neural-tangents 0.6.5 (structured derivatives, `vmap_axes=0`), which needs its own
   environment (old JAX): `benchmarks/nt_reference_ntk.py` times the same network on the same
   parameters and inputs (the `--anchor` .npz written here) and saves its kernel at N = 1024;
   `--nt-reference PATH` reads that file and reports our median / its median per N (target
   <= 0.5) and the max relative kernel difference max|K - K_nt| / max|K_nt| (target <= 1e-5).
   `--nt-python PATH` runs the reference script with that interpreter in this run, alternating
   with ours for `--rounds` rounds (the machine is shared: the load drifts between minutes, so
   each round's ratio compares timings taken side by side; the table gives their median).

Usage:
    python benchmarks/bench_ntk_jaxpr.py --nt-python /tmp/nt-venv/bin/python \\
        --out benchmarks/ntk_jaxpr.md                  # everything (about 10 min on 2 cores)
    python benchmarks/bench_ntk_jaxpr.py --sizes 256 --repeats 2 --skip-memory   # quick
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

import numpy as np

FORMS = ("plain", "nnx")
FORM_NAMES = {"plain": "plain JAX function", "nnx": "`nnx.Linear` MLP via `from_nnx`"}


def write_anchor(path, width, dim, n, seed=0):
    """Parameters (W ~ N(0, 1/fan_in), b ~ N(0, 0.01)) and inputs, float32, as an .npz."""
    rng = np.random.default_rng(seed)
    sizes = [dim, width, width, width, 1]
    arrays = {"x": rng.standard_normal((n, dim)).astype(np.float32)}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        arrays[f"w{i}"] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        arrays[f"b{i}"] = (0.1 * rng.standard_normal(b)).astype(np.float32)
    np.savez(path, **arrays)


def plain_mlp(params, x):
    h = x
    for w, b in params[:-1]:
        h = _relu(h @ w + b[None, :])
    w, b = params[-1]
    return (h @ w + b[None, :])[:, 0]


def _relu(x):
    import jax

    return jax.nn.relu(x)


def build(form, anchor):
    """`(apply_fn, params, x)` of the anchor network in the given form."""
    import jax.numpy as jnp
    from flax import nnx

    import spectral_jax as sj

    data = np.load(anchor)
    layers = [(jnp.asarray(data[f"w{i}"]), jnp.asarray(data[f"b{i}"])) for i in range(4)]
    x = jnp.asarray(data["x"])
    if form == "plain":
        return plain_mlp, layers, x

    class LinearMLP(nnx.Module):
        def __init__(self):
            rngs = nnx.Rngs(0)
            self.layers = nnx.List([
                nnx.Linear(w.shape[0], w.shape[1], rngs=rngs, param_dtype=jnp.float32)
                for w, _ in layers
            ])
            for layer, (w, b) in zip(self.layers, layers):
                layer.kernel.set_value(w)
                layer.bias.set_value(b)

        def __call__(self, h):
            for layer in self.layers[:-1]:
                h = _relu(layer(h))
            return self.layers[-1](h)[:, 0]

    apply_fn, params = sj.from_nnx(LinearMLP())
    return apply_fn, params, x


def _timed(fn, repeats):
    import jax

    start = time.perf_counter()
    k = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        k = jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return k, first, statistics.median(times)


def time_forms(args, jacobian: bool):
    import spectral_jax as sj
    from spectral_jax.networks.ntk_jaxpr import jaxpr_ntk_report

    rows, kernels, reports = [], {}, {}
    reference = sj.NTKImplementation.JACOBIAN_CONTRACTION
    for form in FORMS:
        apply_fn, params, x = build(form, args.anchor)
        reports[form] = [(r.path, r.kind.value, r.primitive) for r in
                         jaxpr_ntk_report(apply_fn, params, x[:1])]
        for n in args.sizes:
            k, first, median = _timed(lambda: sj.empirical_ntk(apply_fn, params, x[:n]),
                                      args.repeats)
            kernels[(form, n)] = np.asarray(k)
            rows.append(dict(form=form, n=n, impl="AUTO (default)", first=first,
                             median=median, repeats=args.repeats))
            print(rows[-1], flush=True)
        if args.jacobian_n and jacobian:
            n = args.jacobian_n
            fn = lambda: sj.empirical_ntk(apply_fn, params, x[:n], implementation=reference)  # noqa: E731
            k, first, median = _timed(fn, args.jacobian_repeats)
            kernels[(form, "jc")] = np.asarray(k)
            rows.append(dict(form=form, n=n, impl="JACOBIAN_CONTRACTION", first=first,
                             median=median, repeats=args.jacobian_repeats))
            print(rows[-1], flush=True)
    return rows, kernels, reports


def memory_child(form, width, n):
    """Runs in a child process: prints a JSON line with the kernel's memory and time."""
    import jax
    import jax.numpy as jnp

    import spectral_jax as sj

    path = f"/tmp/bench_ntk_jaxpr_mem_{os.getpid()}.npz"
    write_anchor(path, width, 16, n, seed=1)
    apply_fn, params, x = build(form, path)
    os.remove(path)
    jax.block_until_ready(x)
    before = _status()
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM: peak of what follows only
        f.write("5")
    start = time.perf_counter()
    k = jax.block_until_ready(sj.empirical_ntk(apply_fn, params, x))
    seconds = time.perf_counter() - start
    after = _status()
    print(json.dumps(dict(form=form, n=n, width=width, rss_before_mb=before["VmRSS"],
                          peak_during_mb=after["VmHWM"], vm_peak_mb=after["VmPeak"],
                          seconds=seconds, finite=bool(jnp.isfinite(k).all()))))


def _status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmPeak", "VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024  # kB -> MB
    return out


def measure_memory(args):
    rows = []
    for form in FORMS:
        cmd = [sys.executable, __file__, "--memory-child", form, "--mem-width",
               str(args.mem_width), "--mem-n", str(args.mem_n)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return rows


def run_reference(args, out):
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nt_reference_ntk.py")
    cmd = [args.nt_python, script, "--anchor", args.anchor, "--out", out,
           "--repeats", str(args.repeats), "--sizes", *map(str, args.sizes)]
    subprocess.run(cmd, check=True)


def _merge_rounds(rounds):
    """Median over rounds of each row's median; per-round ratios to neural-tangents."""
    merged = []
    for row in rounds[0][0]:
        key = (row["form"], row["n"], row["impl"])
        pairs = [(r, nt) for rows, nt in rounds for r in rows
                 if (r["form"], r["n"], r["impl"]) == key]
        ratios, refs = [], []
        for r, nt in pairs:
            ref = dict(zip(nt["n"].tolist(), nt["median_s"].tolist())).get(r["n"]) if nt else None
            if ref and r["impl"].startswith("AUTO"):
                ratios.append(r["median"] / ref)
                refs.append(ref)
        merged.append(dict(row, median=statistics.median(r["median"] for r, _ in pairs),
                           rounds=len(pairs), ratios=ratios,
                           nt=statistics.median(refs) if refs else None))
    return merged


def report(args, rounds, kernels, reports, memory) -> str:
    import jax

    nt = rounds[0][1]
    rows = _merge_rounds(rounds)

    lines = [
        "# Default eNTK on networks without dense factors (`benchmarks/bench_ntk_jaxpr.py`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores shared with other jobs "
        f"(load average {args.load_before} before, {os.getloadavg()[0]:.1f} after), CPU "
        f"backend, jax {jax.__version__}, float32, OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}. The machine is noisy: compare "
        "ratios measured in the same run, not absolute times across runs.",
        "",
        "Anchor network: ReLU MLP 16 -> 512 -> 512 -> 512 -> 1 (P = 534,529), parameters and "
        f"inputs from `{args.anchor}` (written by this script, seed 0).",
        "",
        "## Time: public default `sj.empirical_ntk(apply_fn, params, x)` (AUTO)",
        "",
        f"First call = compile + run (first round); median (s) = median over {len(rounds)} "
        f"round(s) of the median of {args.repeats} timed calls. *ours / NT*: median of the "
        "per-round ratios, each round timing ours and then neural-tangents (separate process, "
        "its own venv) back to back; the per-round ratios follow in brackets."
        if nt else "No neural-tangents reference.",
        "",
        "| model form | N | implementation | first call (s) | median (s) | rounds "
        "| neural-tangents median (s) | ours / NT [per round] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ref = r["nt"] if r["impl"].startswith("AUTO") else None
        ratio = (f"{statistics.median(r['ratios']):.2f} ["
                 + ", ".join(f"{x:.2f}" for x in r["ratios"]) + "]") if r["ratios"] else "-"
        lines.append(
            f"| {FORM_NAMES[r['form']]} | {r['n']} | {r['impl']} | {r['first']:.2f} | "
            f"{r['median']:.4g} | {r['rounds']} | {f'{ref:.4g}' if ref else '-'} | {ratio} |"
        )
    if nt:
        lines += ["", "neural-tangents: `jax.jit(nt.empirical_ntk_fn(f, trace_axes=(), "
                  "vmap_axes=0, implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES))` "
                  "on the same plain function, parameters and inputs "
                  "(`benchmarks/nt_reference_ntk.py`)."]
        lines += ["", "neural-tangents first calls (compile + run): " + ", ".join(
            f"N={n}: {t:.2f} s" for n, t in zip(nt["n"].tolist(), nt["first_s"].tolist())
        ) + f" (jax {nt['jax_version']}, neural-tangents {nt['nt_version']})."]
    lines += ["", "## Exactness", ""]
    rel = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))  # noqa: E731
    n_jc = args.jacobian_n
    for form in FORMS:
        if (form, "jc") in kernels and (form, n_jc) in kernels:
            lines.append(f"- {FORM_NAMES[form]}: default vs JACOBIAN_CONTRACTION at N={n_jc}: "
                         f"max rel. diff {rel(kernels[(form, n_jc)], kernels[(form, 'jc')]):.1e}")
    n_nt = int(nt["kernel_n"]) if nt else None
    for form in FORMS:
        if nt and (form, n_nt) in kernels:
            lines.append(f"- {FORM_NAMES[form]}: vs neural-tangents at N={n_nt}: max rel. diff "
                         f"{rel(kernels[(form, n_nt)], nt['kernel']):.1e} (target <= 1e-5)")
    lines += ["", "Max rel. diff = max|K - K_ref| / max|K_ref|; float32 round-off is ~1e-6.",
              "", "Leaf treatment (`jaxpr_ntk_report`): "]
    for form in FORMS:
        kinds = sorted({f"{kind} ({prim})" for _, kind, prim in reports[form]})
        lines.append(f"- {FORM_NAMES[form]}: {len(reports[form])} leaves, " + ", ".join(kinds))
    if memory:
        lines += [
            "", f"## Peak memory: default eNTK, N = {args.mem_n}, width {args.mem_width}", "",
            "One fresh child process per row. *RSS before*: VmRSS once model and inputs exist; "
            "*peak during*: VmHWM after resetting it just before the kernel call (compile + "
            "compute); *VmPeak*: peak virtual size of the whole process (address space, not "
            "memory: XLA reserves more than it touches).", "",
            "| model form | RSS before (MB) | peak during (MB) | VmPeak (MB) | time (s) |",
            "|---|---|---|---|---|",
        ]
        for m in memory:
            lines.append(f"| {FORM_NAMES[m['form']]} | {m['rss_before_mb']:.0f} | "
                         f"{m['peak_during_mb']:.0f} | {m['vm_peak_mb']:.0f} | "
                         f"{m['seconds']:.1f} |")
    lines += ["", "## Commands", "", "```bash", *args.commands, "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", default="/tmp/ntk_jaxpr_anchor.npz")
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 1024, 2048])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="ours/NT alternations")
    parser.add_argument("--jacobian-n", type=int, default=256, help="0: skip")
    parser.add_argument("--jacobian-repeats", type=int, default=3)
    parser.add_argument("--nt-reference", default=None, help=".npz of nt_reference_ntk.py")
    parser.add_argument("--nt-python", default=None, help="run nt_reference_ntk.py with this")
    parser.add_argument("--mem-n", type=int, default=4096)
    parser.add_argument("--mem-width", type=int, default=1024)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", choices=FORMS, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="write the markdown report here")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.mem_width, args.mem_n)
        return
    args.load_before = f"{os.getloadavg()[0]:.1f}"
    args.commands = [" ".join(["python", *sys.argv])]
    write_anchor(args.anchor, 512, 16, max([*args.sizes, args.jacobian_n, 1024]))
    if args.nt_python:
        args.nt_reference = args.nt_reference or "/tmp/ntk_jaxpr_nt_reference.npz"
        args.commands.insert(0, f"# runs: {args.nt_python} benchmarks/nt_reference_ntk.py "
                                f"--anchor {args.anchor} --out {args.nt_reference}")
    rounds, kernels, reports = [], None, None
    for i in range(args.rounds if args.nt_python else 1):
        rows, k, rep = time_forms(args, jacobian=i == 0)
        kernels, reports = kernels or k, reports or rep
        out = args.nt_reference
        if args.nt_python:
            out = out if i == 0 else out.replace(".npz", f".round{i}.npz")
            run_reference(args, out)
        rounds.append((rows, dict(np.load(out)) if out else None))
    memory = [] if args.skip_memory else measure_memory(args)
    text = report(args, rounds, kernels, reports, memory)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
